"""GitHub webhook verification and delivery metadata: pure functions, no I/O.

The signature is checked over the raw body before anything is parsed, stored or queued.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gidgethub import ValidationFailure
from gidgethub.sansio import validate_event

SIGNATURE_HEADER = "x-hub-signature-256"
MAX_DELIVERY_ID = 100


class WebhookRejected(Exception):
    """The request is not a genuine, well-formed delivery; ``status`` is 401 or 400."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class GithubDelivery:
    """What intake needs from a verified delivery; the body stays unparsed until the worker."""

    delivery_id: str
    event: str
    body: bytes


def verify_delivery(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str]
) -> GithubDelivery:
    """Check X-Hub-Signature-256 against each configured secret (constant-time) and read the
    delivery headers; raise WebhookRejected otherwise."""
    signature = headers.get(SIGNATURE_HEADER)
    if not signature or not signature.startswith("sha256="):
        raise WebhookRejected(401, "signature_missing", "X-Hub-Signature-256 is missing")
    if not secrets:
        raise WebhookRejected(401, "not_configured", "no GitHub App is configured on this bot")
    for secret in secrets:
        try:
            validate_event(body, signature=signature, secret=secret)
            break
        except ValidationFailure:
            continue
    else:
        raise WebhookRejected(401, "signature_invalid", "X-Hub-Signature-256 does not match")
    event = headers.get("x-github-event", "")
    delivery_id = headers.get("x-github-delivery", "")
    if not event or not event.replace("_", "").isalnum() or len(event) > 64:
        raise WebhookRejected(400, "event_missing", "X-GitHub-Event is missing or malformed")
    if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID:
        raise WebhookRejected(400, "delivery_missing", "X-GitHub-Delivery is missing or too long")
    return GithubDelivery(delivery_id=delivery_id, event=event, body=body)
