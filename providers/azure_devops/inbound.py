"""Azure DevOps' inbound half: verify a service-hook delivery, then map it to the neutral events.

Pure functions, no I/O. Service hooks carry no signature, so the subscription's credentials are
checked before anything is parsed, stored or queued: the basic-auth password (or an
``X-Aac-Webhook-Secret`` header, for subscriptions that set headers instead) must equal the
organisation's webhook secret, compared in constant time. The worker parses the stored body
later with ``parse_event``.

A pipeline event names its run and project but not its repository or commit (the documented
``build.complete`` and ``run-state-changed`` payloads carry neither): ``PipelineFinished`` is
completed from the Build API by the provider (``AzureDevOpsProvider.resolve_pipeline``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

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

SOURCE = "azure"
DEFAULT_BASE_URL = "https://dev.azure.com"
SECRET_HEADER = "x-aac-webhook-secret"  # noqa: S105 - a header name
# The "Test" button of a subscription sends its sample with an all-zero subscription id.
TEST_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
MAX_DELIVERY_ID = 100
CLOSED_STATUSES = frozenset({"completed", "abandoned"})
# ``build.complete`` statuses / run results, as the neutral conclusion.
_CONCLUSIONS = {
    "succeeded": "success",
    "partiallysucceeded": "failure",
    "failed": "failure",
    "stopped": "cancelled",
    "canceled": "cancelled",
    "cancelled": "cancelled",
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def presented_secret(headers: Mapping[str, str]) -> str | None:
    """The basic-auth password, else the secret header; None when neither is there."""
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep and password else None
    return headers.get(SECRET_HEADER) or None


def verify_delivery(
    headers: Mapping[str, str], body: bytes, secret: str | None, org_id: int | None
) -> VerifiedDelivery:
    """Check the subscription's credentials against the organisation's webhook secret
    (constant-time), then read the notification's id and event type from the body.

    ``secret`` is None when the organisation is unknown or has none: rejected alike, so the
    answer does not tell which organisations exist. A "Test" notification comes back as a
    "ping" (answered 200, never stored).
    """
    presented = presented_secret(headers)
    if presented is None:
        raise WebhookRejected(
            401, "credentials_missing", "basic-auth credentials (or X-Aac-Webhook-Secret) missing"
        )
    if secret is None or not hmac.compare_digest(presented.encode(), secret.encode()):
        raise WebhookRejected(
            401,
            "credentials_invalid",
            "the service hook's credentials do not match this organisation's webhook secret",
        )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(400, "body_invalid", "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "body_invalid", "the body is not a JSON object")
    delivery_id, event = payload.get("id"), payload.get("eventType")
    if not isinstance(delivery_id, str) or not 0 < len(delivery_id) <= MAX_DELIVERY_ID:
        raise WebhookRejected(400, "delivery_missing", "the notification has no usable id")
    if not isinstance(event, str) or not 0 < len(event) <= 100:
        raise WebhookRejected(400, "event_missing", "the notification has no eventType")
    if payload.get("subscriptionId") == TEST_SUBSCRIPTION:
        event = "ping"
    return VerifiedDelivery(delivery_id=delivery_id, event=event, body=body, org_id=org_id)


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------
def collection_url(payload: dict[str, Any]) -> str:
    """The collection (organisation) URL the payload says it came from; "" when it does not
    (the documented samples carry only ids; live deliveries add ``baseUrl``)."""
    containers = payload.get("resourceContainers") or {}
    for key in ("collection", "account"):
        url = (containers.get(key) or {}).get("baseUrl")
        if isinstance(url, str) and url:
            return url
    return ""


def _origin(payload: dict[str, Any], action: str = "") -> dict[str, Any]:
    url = collection_url(payload)
    return {
        "source": SOURCE,
        "host": host_of(url or DEFAULT_BASE_URL),
        "api_url": url.rstrip("/"),
        "scm_action": action,
    }


def _repository(repo: dict[str, Any]) -> str:
    """``<project>/<repository>`` names, the form the provider and ``aac report`` use."""
    project = str((repo.get("project") or {}).get("name") or "")
    name = str(repo.get("name") or "")
    return f"{project}/{name}" if project and name else ""


def _branch(ref: object) -> str:
    return str(ref or "").removeprefix("refs/heads/")


def _login(identity: object) -> str:
    """Who an identity reference is: its account name (``uniqueName``), else its id."""
    if not isinstance(identity, dict):
        return ""
    return str(identity.get("uniqueName") or identity.get("id") or "")


def parse_event(event: str, payload: dict[str, Any], *, bot_logins: set[str]) -> Event:
    """What to do about one verified service-hook notification."""
    resource = payload.get("resource") or {}
    if not isinstance(resource, dict):
        return Ignore(reason="the notification has no resource")
    if event in ("git.pullrequest.created", "git.pullrequest.updated", "git.pullrequest.merged"):
        return _pull_request(event, payload, resource)
    if event == "build.complete":
        return _build_complete(payload, resource)
    if event == "ms.vss-pipelines.run-state-changed-event":
        return _run_state_changed(payload, resource)
    if event == "ms.vss-code.git-pullrequest-comment-event":
        return _comment(payload, resource, bot_logins)
    return Ignore(reason=f"{event} is not handled")


def _pull_request(event: str, payload: dict[str, Any], pr: dict[str, Any]) -> Event:
    status = str(pr.get("status") or "")
    repository = _repository(pr.get("repository") or {})
    number = int(pr.get("pullRequestId") or 0)
    action = f"{event.rsplit('.', 1)[1]}:{status}"
    if not repository or not number:
        return Ignore(reason="the pull request names no repository or id")
    if status in CLOSED_STATUSES:
        return ChangeClosed(**_origin(payload, action), repository=repository, number=number)
    if event == "git.pullrequest.merged" or status != "active":
        return Ignore(reason=f"{event} with status {status or '-'} starts nothing")
    sha = str((pr.get("lastMergeSourceCommit") or {}).get("commitId") or "")
    if not sha:
        return Ignore(reason="the pull request has no source commit yet")
    # An update is a push, a vote, a title edit... The core opens cycles only for suites that
    # have none at this commit, so only a new source commit (or a draft published) starts any.
    kind = ChangeOpened if event == "git.pullrequest.created" else ChangeUpdated
    return kind(
        **_origin(payload, action),
        repository=repository,
        number=number,
        sha=sha,
        ref=_branch(pr.get("sourceRefName")),
        base_ref=_branch(pr.get("targetRefName")),
        draft=bool(pr.get("isDraft")),
        # A pull request from a fork names it; one within the repository has no forkSource.
        from_fork=bool(pr.get("forkSource")),
        head_repository=_repository((pr.get("forkSource") or {}).get("repository") or {})
        or repository,
    )


def _project(payload: dict[str, Any], *urls: object) -> str:
    """The project (id) a pipeline event is about: its resource container, else the segment
    before ``_apis`` in one of the resource's URLs."""
    project = str(((payload.get("resourceContainers") or {}).get("project") or {}).get("id") or "")
    if project:
        return project
    for url in urls:
        parts = str(url or "").split("/")
        if "_apis" in parts:
            candidate = parts[parts.index("_apis") - 1]
            if _GUID.match(candidate):
                return candidate
    return ""


def _build_complete(payload: dict[str, Any], build: dict[str, Any]) -> Event:
    build_id = build.get("id")
    if not isinstance(build_id, int):
        return Ignore(reason="build.complete names no build")
    status = str(build.get("status") or build.get("result") or "")
    # "LG:refs/heads/main:<sha>" (Git) names the ref and commit the build ran on.
    _, ref, sha = [*str(build.get("sourceGetVersion") or "").split(":", 2), "", ""][:3]
    return PipelineFinished(
        **_origin(payload, f"build.complete:{status}"),
        repository="",
        project=_project(payload, build.get("url")),
        pipeline_id=str(build_id),
        sha=sha,
        name=str((build.get("definition") or {}).get("name") or ""),
        ref=_branch(ref) or None,
        conclusion=_CONCLUSIONS.get(status.lower(), "failure"),
    )


def _run_state_changed(payload: dict[str, Any], resource: dict[str, Any]) -> Event:
    run = resource.get("run") or {}
    state = str(run.get("state") or "")
    if state != "completed":
        return Ignore(reason=f"pipeline run is {state or 'in an unknown state'}, not completed")
    run_id = run.get("id")
    if not isinstance(run_id, int):
        return Ignore(reason="the run-state event names no run")
    result = str(run.get("result") or "")
    pipeline = resource.get("pipeline") or run.get("pipeline") or {}
    web = ((run.get("_links") or {}).get("web") or {}).get("href")
    return PipelineFinished(
        **_origin(payload, f"run:{result}"),
        repository="",
        project=_project(payload, run.get("url"), web),
        pipeline_id=str(run_id),  # a pipeline run is a build: the same id
        sha="",
        name=str(pipeline.get("name") or ""),
        url=str(web) if web else None,
        conclusion=_CONCLUSIONS.get(result.lower(), "failure"),
    )


def _comment(payload: dict[str, Any], resource: dict[str, Any], bot_logins: set[str]) -> Event:
    comment, pr = resource.get("comment") or {}, resource.get("pullRequest") or {}
    author = comment.get("author") or {}
    if _login(author) in bot_logins or str(author.get("id") or "") in bot_logins:
        return Ignore(reason="caused by the bot itself")
    if comment.get("isDeleted"):
        return Ignore(reason="a deleted comment")
    command = parse_command(str(comment.get("content") or ""))
    if command is None:
        return Ignore(reason="no /aac command")
    repository, number = _repository(pr.get("repository") or {}), int(pr.get("pullRequestId") or 0)
    if not repository or not number:
        return Ignore(reason="the comment names no pull request")
    return chat_command(
        command,
        _origin(payload, f"comment:{command[0]}"),
        repository=repository,
        number=number,
        # The identity id: what the permission check looks the user up by.
        requested_by=str(author.get("id") or "") or None,
    )
