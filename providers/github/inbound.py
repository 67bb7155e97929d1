"""GitHub's inbound half: verify a delivery, then map its payload to the neutral events.

Pure functions, no I/O. The signature is checked over the raw body before anything is parsed,
stored or queued; the worker parses the stored body later with ``parse_event``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gidgethub import ValidationFailure
from gidgethub.sansio import validate_event

from providers.events import (
    ChangeClosed,
    ChangeOpened,
    ChangeUpdated,
    Event,
    Ignore,
    InstallationChanged,
    PipelineFinished,
    RerunRequested,
    chat_command,
    host_of,
    parse_command,
)
from providers.inbound import VerifiedDelivery, WebhookRejected

SOURCE = "github"
DEFAULT_API_URL = "https://api.github.com"
PR_OPEN_ACTIONS = frozenset({"opened", "reopened", "ready_for_review"})
RERUN_ACTION = "aac-rerun"
REANALYSE_ACTION = "aac-reanalyse"
SIGNATURE_HEADER = "x-hub-signature-256"
MAX_DELIVERY_ID = 100


def verify_delivery(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[tuple[int, str]]
) -> VerifiedDelivery:
    """Check X-Hub-Signature-256 against each configured App's secret (``(app row id,
    secret)``, constant-time) and read the delivery headers; the delivery names the App whose
    secret matched. WebhookRejected otherwise."""
    signature = headers.get(SIGNATURE_HEADER)
    if not signature or not signature.startswith("sha256="):
        raise WebhookRejected(401, "signature_missing", "X-Hub-Signature-256 is missing")
    if not secrets:
        raise WebhookRejected(401, "not_configured", "no GitHub App is configured on this bot")
    app_id = next((app for app, secret in secrets if _signed(body, signature, secret)), None)
    if app_id is None:
        raise WebhookRejected(401, "signature_invalid", "X-Hub-Signature-256 does not match")
    event = headers.get("x-github-event", "")
    delivery_id = headers.get("x-github-delivery", "")
    if not event or not event.replace("_", "").isalnum() or len(event) > 64:
        raise WebhookRejected(400, "event_missing", "X-GitHub-Event is missing or malformed")
    if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID:
        raise WebhookRejected(400, "delivery_missing", "X-GitHub-Delivery is missing or too long")
    return VerifiedDelivery(delivery_id=delivery_id, event=event, body=body, app_id=app_id)


def _signed(body: bytes, signature: str, secret: str) -> bool:
    try:
        validate_event(body, signature=signature, secret=secret)
    except ValidationFailure:
        return False
    return True


def _installation(payload: dict[str, Any]) -> int | None:
    installation = payload.get("installation") or {}
    value = installation.get("id")
    return int(value) if isinstance(value, int) else None


def _repo(payload: dict[str, Any]) -> str:
    return str((payload.get("repository") or {}).get("full_name") or "")


def _api_url(payload: dict[str, Any]) -> str:
    """The API base URL of the payload's repository (``repository.url`` is
    ``<api>/repos/<owner>/<name>``), or "" when it does not have that shape."""
    repository = payload.get("repository") or {}
    url, name = str(repository.get("url") or ""), str(repository.get("full_name") or "")
    suffix = f"/repos/{name}"
    if not name or not url.lower().endswith(suffix.lower()):
        return ""
    return url[: -len(suffix)]


def _origin(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``Origin`` fields of a payload: GitHub, the API host, the installation."""
    api_url = _api_url(payload)
    return {
        "source": SOURCE,
        "host": host_of(api_url or DEFAULT_API_URL),
        "installation_id": _installation(payload),
        "api_url": api_url,
        "scm_action": str(payload.get("action") or ""),
    }


def is_own_event(payload: dict[str, Any], bot_logins: set[str]) -> bool:
    """True when the bot itself caused this event (its comment, its check run)."""
    sender = payload.get("sender") or {}
    return bool(sender.get("login")) and sender.get("login") in bot_logins


# Every event name parse_event acts on for some action; the App manifest subscribes to
# exactly these (app-manifests/github-app.yml, kept in step by a test).
HANDLED_GITHUB_EVENTS = frozenset(
    {
        "pull_request",
        "check_suite",
        "check_run",
        "workflow_run",
        "issue_comment",
        "installation",
        "installation_repositories",
    }
)


def parse_event(event: str, payload: dict[str, Any], *, bot_logins: set[str]) -> Event:
    """What to do about one verified GitHub delivery."""
    action = str(payload.get("action") or "")
    if event in ("installation", "installation_repositories"):
        return _installation_change(event, action, payload)
    if is_own_event(payload, bot_logins):
        return Ignore(reason="caused by the bot itself")
    if event == "pull_request":
        return _pull_request(action, payload)
    if event == "workflow_run":
        return _workflow_run(action, payload)
    if event == "check_suite" and action in ("requested", "rerequested"):
        suite = payload.get("check_suite") or {}
        if action == "requested":
            return Ignore(reason="check suites are started by pull request and workflow events")
        return RerunRequested(
            **_origin(payload), repository=_repo(payload), sha=str(suite.get("head_sha") or "")
        )
    if event == "check_run":
        return _check_run(action, payload)
    if event == "issue_comment":
        return _issue_comment(action, payload)
    return Ignore(reason=f"{event}.{action or '-'} is not handled")


def _pull_request(action: str, payload: dict[str, Any]) -> Event:
    pr = payload.get("pull_request") or {}
    number = int(payload.get("number") or pr.get("number") or 0)
    if action == "closed":
        return ChangeClosed(**_origin(payload), repository=_repo(payload), number=number)
    if action not in PR_OPEN_ACTIONS and action != "synchronize":
        return Ignore(reason=f"pull_request.{action} does not start cycles")
    head, base = pr.get("head") or {}, pr.get("base") or {}
    kind = ChangeUpdated if action == "synchronize" else ChangeOpened
    # A deleted fork leaves ``head.repo`` null: its code is still not the base repository's.
    head_repository = str((head.get("repo") or {}).get("full_name") or "")
    base_repository = str((base.get("repo") or {}).get("full_name") or _repo(payload))
    return kind(
        **_origin(payload),
        repository=_repo(payload),
        number=number,
        sha=str(head.get("sha") or ""),
        ref=str(head.get("ref") or ""),
        base_ref=str(base.get("ref") or ""),
        draft=bool(pr.get("draft")),
        from_fork=head_repository.lower() != base_repository.lower(),
        head_repository=head_repository,
    )


def _workflow_run(action: str, payload: dict[str, Any]) -> Event:
    if action != "completed":
        return Ignore(reason=f"workflow_run.{action} is not the end of a pipeline")
    run = payload.get("workflow_run") or {}
    prs = run.get("pull_requests") or []
    first_pr = prs[0] if prs else {}
    return PipelineFinished(
        **_origin(payload),
        repository=_repo(payload),
        pipeline_id=str(int(run.get("id") or 0)),
        run_attempt=int(run.get("run_attempt") or 1),
        name=str(run.get("name") or (payload.get("workflow") or {}).get("name") or ""),
        sha=str(run.get("head_sha") or ""),
        ref=run.get("head_branch"),
        url=run.get("html_url"),
        conclusion=run.get("conclusion"),
        number=int(first_pr["number"]) if first_pr.get("number") else None,
        base_ref=((first_pr.get("base") or {}).get("ref")),
        from_fork=_run_from_fork(run, payload),
    )


def _run_from_fork(run: dict[str, Any], payload: dict[str, Any]) -> bool | None:
    """Whether a workflow run's commit comes from another repository than the run's own."""
    head = str((run.get("head_repository") or {}).get("full_name") or "")
    own = str((run.get("repository") or {}).get("full_name") or _repo(payload))
    if not head:
        return None
    return head.lower() != own.lower()


def _check_run(action: str, payload: dict[str, Any]) -> Event:
    run = payload.get("check_run") or {}
    external = str(run.get("external_id") or "") or None
    if action == "rerequested":
        return RerunRequested(
            **_origin(payload),
            repository=_repo(payload),
            sha=run.get("head_sha"),
            cycle_id=external,
        )
    if action == "requested_action":
        identifier = (payload.get("requested_action") or {}).get("identifier")
        if identifier not in (RERUN_ACTION, REANALYSE_ACTION):
            return Ignore(reason=f"unknown requested action {identifier!r}")
        return RerunRequested(
            **_origin(payload),
            repository=_repo(payload),
            sha=run.get("head_sha"),
            cycle_id=external,
            reanalyse=identifier == REANALYSE_ACTION,
        )
    return Ignore(reason=f"check_run.{action} is not handled")


def _issue_comment(action: str, payload: dict[str, Any]) -> Event:
    issue = payload.get("issue") or {}
    if action != "created" or not issue.get("pull_request"):
        return Ignore(reason="not a new comment on a pull request")
    comment = payload.get("comment") or {}
    command = parse_command(str(comment.get("body") or ""))
    if command is None:
        return Ignore(reason="no /aac command")
    return chat_command(
        command,
        _origin(payload),
        repository=_repo(payload),
        number=int(issue.get("number") or 0),
        requested_by=str((comment.get("user") or {}).get("login") or ""),
    )


def _installation_change(event: str, action: str, payload: dict[str, Any]) -> Event:
    installation = payload.get("installation") or {}
    account = installation.get("account") or {}
    installation_id = installation.get("id")
    if not isinstance(installation_id, int):
        return Ignore(reason="no installation id")

    def names(key: str) -> list[str]:
        return [str(r.get("full_name")) for r in payload.get(key) or [] if r.get("full_name")]

    added = names("repositories") if event == "installation" else names("repositories_added")
    app_id = installation.get("app_id")
    tokens_url = str(installation.get("access_tokens_url") or "")
    return InstallationChanged(
        source=SOURCE,
        host=host_of(tokens_url or DEFAULT_API_URL),
        installation_id=installation_id,
        action=f"{event}.{action}",
        account_login=str(account.get("login") or ""),
        account_type=str(account.get("type") or "Organization"),
        repositories_added=added,
        repositories_removed=names("repositories_removed"),
        permissions=dict(installation.get("permissions") or {}),
        app_id=app_id if isinstance(app_id, int) else None,
        access_tokens_url=tokens_url,
        scm_action=action,
    )
