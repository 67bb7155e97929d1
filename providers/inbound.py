"""What every SCM package's webhook verification returns or raises (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


class WebhookRejected(Exception):
    """The request is not a genuine, well-formed delivery; ``status`` is 401 or 400.

    ``detail`` is safe to return to the caller: it never quotes the body or a secret.
    """

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class VerifiedDelivery:
    """What intake needs from a verified delivery; the body stays unparsed until the worker.

    ``delivery_id`` is the SCM's own id of the delivery, stable across redeliveries;
    ``org_id`` the organisation whose webhook URL and secret it came through (None where one
    endpoint serves every organisation, as GitHub's App webhook does); ``app_id`` the App
    (``github_apps.id``) whose secret verified it, where one endpoint serves several Apps.
    An ``event`` of
    "ping" only checks the hook: it is answered and not stored.
    """

    delivery_id: str
    event: str
    body: bytes
    org_id: int | None = None
    app_id: int | None = None
