"""Pure mapping from a GitHub webhook (event name + payload) to what the bot should do.

No I/O: the handlers in bot/handlers/ act on the returned dataclasses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PR_START_ACTIONS = frozenset({"opened", "synchronize", "reopened", "ready_for_review"})
RERUN_COMMAND = re.compile(
    r"^\s*/aac\s+(rerun|reanalyse|reanalyze)\b", re.IGNORECASE | re.MULTILINE
)
RERUN_ACTION = "aac-rerun"
REANALYSE_ACTION = "aac-reanalyse"


@dataclass(frozen=True, slots=True)
class Ignore:
    reason: str


@dataclass(frozen=True, slots=True)
class StartPullRequestCycles:
    installation_id: int | None
    repository: str
    pr: int
    sha: str
    ref: str
    base_ref: str
    draft: bool
    api_url: str = ""  # the API the repository lives under: tells hosts' installations apart


@dataclass(frozen=True, slots=True)
class CancelPullRequestCycles:
    installation_id: int | None
    repository: str
    pr: int
    api_url: str = ""


@dataclass(frozen=True, slots=True)
class IngestWorkflowRun:
    installation_id: int | None
    repository: str
    run_id: int
    run_attempt: int
    workflow: str
    sha: str
    ref: str | None
    html_url: str | None
    conclusion: str | None
    pr: int | None
    base_ref: str | None
    api_url: str = ""


@dataclass(frozen=True, slots=True)
class Rerun:
    """Re-run (``reanalyse=False``) or re-analyse the cycles of a commit, or one cycle."""

    installation_id: int | None
    repository: str
    sha: str | None = None
    pr: int | None = None
    cycle_id: str | None = None
    reanalyse: bool = False
    requested_by: str | None = None
    needs_permission_check: bool = False
    api_url: str = ""


@dataclass(frozen=True, slots=True)
class InstallationChanged:
    installation_id: int
    action: str
    account_login: str
    account_type: str
    repositories_added: list[str] = field(default_factory=list)
    repositories_removed: list[str] = field(default_factory=list)
    permissions: dict[str, str] = field(default_factory=dict)
    # Which App the installation belongs to: its id, and the host in its token URL.
    app_id: int | None = None
    access_tokens_url: str = ""


Action = (
    Ignore
    | StartPullRequestCycles
    | CancelPullRequestCycles
    | IngestWorkflowRun
    | Rerun
    | InstallationChanged
)


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


def is_own_event(payload: dict[str, Any], bot_logins: set[str]) -> bool:
    """True when the bot itself caused this event (its comment, its check run)."""
    sender = payload.get("sender") or {}
    return bool(sender.get("login")) and sender.get("login") in bot_logins


# Every event name map_github_event acts on for some action; the App manifest subscribes to
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


def map_github_event(event: str, payload: dict[str, Any], *, bot_logins: set[str]) -> Action:
    """What to do about one verified GitHub delivery."""
    action = str(payload.get("action") or "")
    if event in ("installation", "installation_repositories"):
        return _installation_change(event, action, payload)
    if is_own_event(payload, bot_logins):
        return Ignore("caused by the bot itself")
    if event == "pull_request":
        return _pull_request(action, payload)
    if event == "workflow_run":
        return _workflow_run(action, payload)
    if event == "check_suite" and action in ("requested", "rerequested"):
        suite = payload.get("check_suite") or {}
        if action == "requested":
            return Ignore("check suites are started by pull request and workflow events")
        return Rerun(
            _installation(payload),
            _repo(payload),
            sha=str(suite.get("head_sha") or ""),
            api_url=_api_url(payload),
        )
    if event == "check_run":
        return _check_run(action, payload)
    if event == "issue_comment":
        return _issue_comment(action, payload)
    return Ignore(f"{event}.{action or '-'} is not handled")


def _pull_request(action: str, payload: dict[str, Any]) -> Action:
    pr = payload.get("pull_request") or {}
    number = int(payload.get("number") or pr.get("number") or 0)
    if action == "closed":
        return CancelPullRequestCycles(
            _installation(payload), _repo(payload), number, api_url=_api_url(payload)
        )
    if action not in PR_START_ACTIONS:
        return Ignore(f"pull_request.{action} does not start cycles")
    head, base = pr.get("head") or {}, pr.get("base") or {}
    return StartPullRequestCycles(
        installation_id=_installation(payload),
        repository=_repo(payload),
        pr=number,
        sha=str(head.get("sha") or ""),
        ref=str(head.get("ref") or ""),
        base_ref=str(base.get("ref") or ""),
        draft=bool(pr.get("draft")),
        api_url=_api_url(payload),
    )


def _workflow_run(action: str, payload: dict[str, Any]) -> Action:
    if action != "completed":
        return Ignore(f"workflow_run.{action} is not the end of a pipeline")
    run = payload.get("workflow_run") or {}
    prs = run.get("pull_requests") or []
    first_pr = prs[0] if prs else {}
    return IngestWorkflowRun(
        installation_id=_installation(payload),
        repository=_repo(payload),
        run_id=int(run.get("id") or 0),
        run_attempt=int(run.get("run_attempt") or 1),
        workflow=str(run.get("name") or (payload.get("workflow") or {}).get("name") or ""),
        sha=str(run.get("head_sha") or ""),
        ref=run.get("head_branch"),
        html_url=run.get("html_url"),
        conclusion=run.get("conclusion"),
        pr=int(first_pr["number"]) if first_pr.get("number") else None,
        base_ref=((first_pr.get("base") or {}).get("ref")),
        api_url=_api_url(payload),
    )


def _check_run(action: str, payload: dict[str, Any]) -> Action:
    run = payload.get("check_run") or {}
    external = str(run.get("external_id") or "") or None
    if action == "rerequested":
        return Rerun(
            _installation(payload),
            _repo(payload),
            sha=run.get("head_sha"),
            cycle_id=external,
            api_url=_api_url(payload),
        )
    if action == "requested_action":
        identifier = (payload.get("requested_action") or {}).get("identifier")
        if identifier not in (RERUN_ACTION, REANALYSE_ACTION):
            return Ignore(f"unknown requested action {identifier!r}")
        return Rerun(
            _installation(payload),
            _repo(payload),
            sha=run.get("head_sha"),
            cycle_id=external,
            reanalyse=identifier == REANALYSE_ACTION,
            api_url=_api_url(payload),
        )
    return Ignore(f"check_run.{action} is not handled")


def _issue_comment(action: str, payload: dict[str, Any]) -> Action:
    issue = payload.get("issue") or {}
    if action != "created" or not issue.get("pull_request"):
        return Ignore("not a new comment on a pull request")
    comment = payload.get("comment") or {}
    match = RERUN_COMMAND.search(str(comment.get("body") or ""))
    if match is None:
        return Ignore("no /aac command")
    return Rerun(
        _installation(payload),
        _repo(payload),
        pr=int(issue.get("number") or 0),
        reanalyse=match.group(1).lower() != "rerun",
        requested_by=str((comment.get("user") or {}).get("login") or ""),
        needs_permission_check=True,
        api_url=_api_url(payload),
    )


def _installation_change(event: str, action: str, payload: dict[str, Any]) -> Action:
    installation = payload.get("installation") or {}
    account = installation.get("account") or {}
    installation_id = installation.get("id")
    if not isinstance(installation_id, int):
        return Ignore("no installation id")

    def names(key: str) -> list[str]:
        return [str(r.get("full_name")) for r in payload.get(key) or [] if r.get("full_name")]

    added = names("repositories") if event == "installation" else names("repositories_added")
    app_id = installation.get("app_id")
    return InstallationChanged(
        installation_id=installation_id,
        action=f"{event}.{action}",
        account_login=str(account.get("login") or ""),
        account_type=str(account.get("type") or "Organization"),
        repositories_added=added,
        repositories_removed=names("repositories_removed"),
        permissions=dict(installation.get("permissions") or {}),
        app_id=app_id if isinstance(app_id, int) else None,
        access_tokens_url=str(installation.get("access_tokens_url") or ""),
    )
