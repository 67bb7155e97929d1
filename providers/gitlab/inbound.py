"""GitLab's inbound half: verify a delivery, then map its payload to the neutral events.

Pure functions, no I/O. A delivery is genuine when it carries the organisation's webhook
secret, either as ``X-Gitlab-Token`` (compared in constant time) or as the key of GitLab's
signed webhooks (``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``,
the Standard Webhooks scheme, refused when the timestamp is more than five minutes off).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from providers.base import comment_marker
from providers.events import (
    ChangeClosed,
    ChangeOpened,
    ChangeUpdated,
    Event,
    Ignore,
    PipelineFinished,
    chat_command,
    host_of,
    parse_command,
)
from providers.inbound import VerifiedDelivery, WebhookRejected

SOURCE = "gitlab"
DEFAULT_URL = "https://gitlab.com"
TOKEN_HEADER = "x-gitlab-token"  # noqa: S105 - a header name, not a secret
EVENT_HEADER = "x-gitlab-event"
INSTANCE_HEADER = "x-gitlab-instance"
# The delivery id, most stable first: Idempotency-Key (and webhook-id, its signed twin)
# stays the same across GitLab's retries of one delivery.
DELIVERY_HEADERS = ("idempotency-key", "webhook-id", "x-gitlab-event-uuid")
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
HEADERS = frozenset(
    h.encode()
    for h in (TOKEN_HEADER, EVENT_HEADER, INSTANCE_HEADER, *DELIVERY_HEADERS, *SIGNATURE_HEADERS)
)
MAX_SIGNATURE_AGE = 300  # seconds, either way
MAX_DELIVERY_ID = 100
FINISHED = {"success": "success", "failed": "failure", "canceled": "cancelled"}
MR_OPEN_ACTIONS = frozenset({"open", "reopen"})
MR_CLOSE_ACTIONS = frozenset({"close", "merge"})
REPORT_MARKER = comment_marker("").split(":report:")[0] + ":report:"


def verify_delivery(
    headers: Mapping[str, str], body: bytes, secret: str | None, *, now: float
) -> VerifiedDelivery:
    """The delivery when it proves it knows ``secret`` (the organisation's webhook secret);
    WebhookRejected (401 credentials, 400 malformed headers) otherwise."""
    signed = any(headers.get(h) for h in SIGNATURE_HEADERS)
    token = headers.get(TOKEN_HEADER)
    if not signed and not token:
        raise WebhookRejected(
            401, "token_missing", "X-Gitlab-Token (or a webhook signature) is missing"
        )
    if not secret:
        raise WebhookRejected(
            401, "not_configured", "no GitLab webhook secret is configured for this organisation"
        )
    if signed:
        _check_signature(headers, body, secret, now)
    elif not hmac.compare_digest((token or "").encode(), secret.encode()):
        raise WebhookRejected(401, "token_invalid", "X-Gitlab-Token does not match")
    event = headers.get(EVENT_HEADER, "")
    if not event or len(event) > 64 or not event.replace(" ", "").isalpha():
        raise WebhookRejected(400, "event_missing", "X-Gitlab-Event is missing or malformed")
    delivery_id = next((v for h in DELIVERY_HEADERS if (v := headers.get(h, ""))), "")
    if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID:
        raise WebhookRejected(
            400, "delivery_missing", "Idempotency-Key / X-Gitlab-Event-UUID is missing or too long"
        )
    return VerifiedDelivery(delivery_id=delivery_id, event=event, body=body)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a signing token: a Standard Webhooks ``whsec_<base64>`` secret is
    base64-decoded, any other token is used as its UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` value GitLab sends for this delivery (``v1,<base64>``)."""
    digest = hmac.new(
        signing_key(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def _check_signature(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    webhook_id, stamp, signatures = (headers.get(h, "") for h in SIGNATURE_HEADERS)
    if not (webhook_id and stamp and signatures):
        raise WebhookRejected(
            401,
            "signature_incomplete",
            "webhook-id, webhook-timestamp and webhook-signature go together",
        )
    if not stamp.isdigit() or abs(now - int(stamp)) > MAX_SIGNATURE_AGE:
        raise WebhookRejected(
            401, "signature_expired", "webhook-timestamp is more than 5 minutes from now"
        )
    expected = sign(secret, webhook_id, stamp, body).encode()
    # Several space-separated signatures may be sent (key rotation): one match suffices.
    if not any(hmac.compare_digest(given.encode(), expected) for given in signatures.split()):
        raise WebhookRejected(401, "signature_invalid", "webhook-signature does not match")


def instance_host(headers: Mapping[str, str]) -> str:
    """The host of the GitLab instance that sent the delivery (``X-Gitlab-Instance``)."""
    return host_of(headers.get(INSTANCE_HEADER, ""))


def parse_event(event: str, payload: dict[str, Any], *, bot_logins: set[str]) -> Event:
    """What to do about one verified GitLab delivery."""
    # The instance as the payload names it (X-Gitlab-Instance was checked at intake).
    origin = {"source": SOURCE, "host": host_of(_project_url(payload)) or host_of(DEFAULT_URL)}
    if event == "Merge Request Hook":
        return _merge_request(payload, origin)
    if event == "Pipeline Hook":
        return _pipeline(payload, origin)
    if event == "Note Hook":
        return _note(payload, origin, bot_logins)
    return Ignore(reason=f"{event} is not handled")


def _project_url(payload: dict[str, Any]) -> str:
    return str((payload.get("project") or {}).get("web_url") or "")


def _repo(payload: dict[str, Any]) -> str:
    return str((payload.get("project") or {}).get("path_with_namespace") or "")


def _merge_request(payload: dict[str, Any], origin: dict[str, Any]) -> Event:
    attrs = payload.get("object_attributes") or {}
    action = str(attrs.get("action") or "")
    origin = {**origin, "scm_action": action}
    number = int(attrs.get("iid") or 0)
    if action in MR_CLOSE_ACTIONS:
        return ChangeClosed(**origin, repository=_repo(payload), number=number)
    draft = bool(attrs.get("draft") or attrs.get("work_in_progress"))
    if action in MR_OPEN_ACTIONS:
        kind: type[ChangeOpened] = ChangeOpened
    elif action == "update" and attrs.get("oldrev"):
        kind = ChangeUpdated  # new commits
    elif action == "update" and _left_draft(payload):
        kind = ChangeOpened  # draft -> ready, as GitHub's ready_for_review
    else:
        return Ignore(reason=f"merge request {action or '-'} brings no new commits")
    return kind(
        **origin,
        repository=_repo(payload),
        number=number,
        sha=str((attrs.get("last_commit") or {}).get("id") or ""),
        ref=str(attrs.get("source_branch") or ""),
        base_ref=str(attrs.get("target_branch") or ""),
        draft=draft,
        **_head(attrs),
    )


def _head(attrs: dict[str, Any]) -> dict[str, Any]:
    """Whether the merge request's source project is another than its target (a fork)."""
    source, target = attrs.get("source_project_id"), attrs.get("target_project_id")
    head = str((attrs.get("source") or {}).get("path_with_namespace") or "")
    if source is None or target is None:
        return {"from_fork": None, "head_repository": head}
    return {"from_fork": source != target, "head_repository": head}


def _left_draft(payload: dict[str, Any]) -> bool:
    change = (payload.get("changes") or {}).get("draft") or {}
    return change.get("previous") is True and change.get("current") is False


def _pipeline(payload: dict[str, Any], origin: dict[str, Any]) -> Event:
    attrs = payload.get("object_attributes") or {}
    status = str(attrs.get("status") or "")
    if status not in FINISHED:
        return Ignore(reason=f"pipeline {status or '-'} has not finished")
    mr = payload.get("merge_request") or {}
    return PipelineFinished(
        **origin,
        scm_action=status,
        repository=_repo(payload),
        pipeline_id=str(int(attrs.get("id") or 0)),
        sha=str(attrs.get("sha") or ""),
        name=str(attrs.get("name") or ""),
        ref=attrs.get("ref"),
        url=attrs.get("url"),
        conclusion=FINISHED[status],
        number=int(mr["iid"]) if mr.get("iid") else None,
        base_ref=mr.get("target_branch"),
        from_fork=_head(mr)["from_fork"] if mr else False,
    )


def _note(payload: dict[str, Any], origin: dict[str, Any], bot_logins: set[str]) -> Event:
    attrs = payload.get("object_attributes") or {}
    mr = payload.get("merge_request") or {}
    if attrs.get("noteable_type") != "MergeRequest" or not mr.get("iid"):
        return Ignore(reason="not a note on a merge request")
    if attrs.get("action", "create") != "create" or attrs.get("system"):
        return Ignore(reason="not a new note by a person")
    user = str((payload.get("user") or {}).get("username") or "")
    note = str(attrs.get("note") or "")
    # The bot's own notes: by its user, or carrying its report marker (which may quote /aac).
    if user in bot_logins or REPORT_MARKER in note:
        return Ignore(reason="caused by the bot itself")
    command = parse_command(note)
    if command is None:
        return Ignore(reason="no /aac command")
    return chat_command(
        command,
        {**origin, "scm_action": "note"},
        repository=_repo(payload),
        number=int(mr["iid"]),
        requested_by=user,
    )
