"""Pure mapping of GitHub's official webhook examples to the neutral events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from providers.events import (
    ChangeClosed,
    ChangeOpened,
    ChangeUpdated,
    Ignore,
    InstallationChanged,
    PipelineFinished,
    RerunRequested,
    RunApproved,
)
from providers.github.inbound import HANDLED_GITHUB_EVENTS
from providers.github.inbound import parse_event as map_github_event

FIXTURES = Path(__file__).parents[2] / "fixtures" / "github" / "webhooks"
BOT = {"aac-test[bot]"}


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened", "ready_for_review"])
def test_pull_request_actions_start_cycles(action: str) -> None:
    payload = example(f"pull_request.{action}")
    mapped = map_github_event("pull_request", payload, bot_logins=BOT)
    assert isinstance(mapped, ChangeOpened)
    # A push is "updated with new commits"; the others open (or re-open) the change.
    assert isinstance(mapped, ChangeUpdated) == (action == "synchronize")
    assert (mapped.source, mapped.host) == ("github", "api.github.com")
    assert mapped.repository == payload["repository"]["full_name"]
    assert mapped.number == payload["number"]
    assert mapped.sha == payload["pull_request"]["head"]["sha"]
    assert mapped.base_ref == payload["pull_request"]["base"]["ref"]
    assert mapped.draft == bool(payload["pull_request"]["draft"])


def test_closed_cancels_and_other_actions_are_ignored() -> None:
    closed = map_github_event("pull_request", example("pull_request.closed"), bot_logins=BOT)
    assert isinstance(closed, ChangeClosed)
    labeled = map_github_event("pull_request", example("pull_request.labeled"), bot_logins=BOT)
    assert isinstance(labeled, Ignore)


def test_workflow_run_completed_is_pipeline_finished() -> None:
    payload = example("workflow_run.completed")
    mapped = map_github_event("workflow_run", payload, bot_logins=BOT)
    assert isinstance(mapped, PipelineFinished)
    assert mapped.pipeline_id == str(payload["workflow_run"]["id"])
    assert mapped.sha == payload["workflow_run"]["head_sha"]
    assert mapped.number is None  # the official example has no pull requests
    requested = map_github_event("workflow_run", example("workflow_run.requested"), bot_logins=BOT)
    assert isinstance(requested, Ignore)


def test_check_suite_and_check_run_reruns() -> None:
    suite = map_github_event("check_suite", example("check_suite.rerequested"), bot_logins=BOT)
    assert isinstance(suite, RerunRequested)
    assert suite.sha == example("check_suite.rerequested")["check_suite"]["head_sha"]
    assert isinstance(
        map_github_event("check_suite", example("check_suite.requested"), bot_logins=BOT), Ignore
    )
    rerun = map_github_event("check_run", example("check_run.rerequested"), bot_logins=BOT)
    assert isinstance(rerun, RerunRequested)
    assert not rerun.reanalyse
    # The official example's button is someone else's ("lgtm|..."): not ours.
    foreign = map_github_event("check_run", example("check_run.requested_action"), bot_logins=BOT)
    assert isinstance(foreign, Ignore)
    ours = example("check_run.requested_action")
    ours["requested_action"] = {"identifier": "aac-reanalyse"}
    ours["check_run"]["external_id"] = "cycle-1"
    mapped = map_github_event("check_run", ours, bot_logins=BOT)
    assert isinstance(mapped, RerunRequested)
    assert mapped.reanalyse
    assert mapped.cycle_id == "cycle-1"


def test_chat_commands_need_a_pull_request_and_a_command() -> None:
    payload = {
        "action": "created",
        "issue": {"number": 3, "pull_request": {"url": "x"}},
        "comment": {"body": "Thanks!\n/aac rerun", "user": {"login": "dev"}},
        "repository": {"full_name": "o/r"},
        "sender": {"login": "dev"},
    }
    mapped = map_github_event("issue_comment", payload, bot_logins=BOT)
    assert isinstance(mapped, RerunRequested)
    assert (mapped.number, mapped.requested_by, mapped.reanalyse) == (3, "dev", False)
    assert mapped.needs_permission_check
    chatter = {**payload, "comment": {"body": "looks good", "user": {"login": "dev"}}}
    assert isinstance(map_github_event("issue_comment", chatter, bot_logins=BOT), Ignore)
    on_issue = {**payload, "issue": {"number": 3}}
    assert isinstance(map_github_event("issue_comment", on_issue, bot_logins=BOT), Ignore)


@pytest.mark.parametrize(
    "name",
    [
        "installation.created",
        "installation.deleted",
        "installation.suspend",
        "installation.unsuspend",
        "installation.new_permissions_accepted",
        "installation_repositories.added",
        "installation_repositories.removed",
    ],
)
def test_installation_events(name: str) -> None:
    payload = example(name)
    event = name.split(".")[0]
    mapped = map_github_event(event, payload, bot_logins=BOT)
    assert isinstance(mapped, InstallationChanged)
    assert mapped.installation_id == payload["installation"]["id"]
    assert mapped.action == f"{event}.{payload['action']}"
    # Which App it belongs to (the deployment may run several).
    assert mapped.app_id == payload["installation"]["app_id"]
    assert mapped.access_tokens_url == payload["installation"]["access_tokens_url"]
    if name == "installation_repositories.removed":
        assert mapped.repositories_removed
    if name == "installation_repositories.added":
        assert mapped.repositories_added


def test_own_events_and_unknown_events_are_ignored() -> None:
    payload = example("pull_request.opened")
    payload["sender"]["login"] = "aac-test[bot]"
    assert isinstance(map_github_event("pull_request", payload, bot_logins=BOT), Ignore)
    assert isinstance(map_github_event("star", {"action": "created"}, bot_logins=BOT), Ignore)


# An issue_comment the bot acts on; GitHub's examples only hold comments on issues.
RERUN_COMMENT = {
    "action": "created",
    "issue": {"number": 3, "pull_request": {"url": "x"}},
    "comment": {"body": "/aac rerun", "user": {"login": "dev"}},
    "repository": {"full_name": "o/r"},
    "sender": {"login": "dev"},
}


def payloads_by_event() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {"issue_comment": [RERUN_COMMENT]}
    for path in sorted(FIXTURES.glob("*.json")):
        found.setdefault(path.name.split(".")[0], []).append(json.loads(path.read_text()))
    return found


@pytest.mark.parametrize("event", sorted(HANDLED_GITHUB_EVENTS))
def test_every_handled_event_is_acted_on_for_some_payload(event: str) -> None:
    """The manifest subscribes to HANDLED_GITHUB_EVENTS: each name must really be mapped."""
    payloads = payloads_by_event().get(event)
    assert payloads, f"no example payload for {event}"
    mapped = [map_github_event(event, p, bot_logins=BOT) for p in payloads]
    assert any(not isinstance(m, Ignore) for m in mapped), f"{event} is only ever ignored"


def test_only_the_handled_events_are_acted_on() -> None:
    """Every event name that maps some payload to an action is in the set (so the manifest
    subscribes to it), whatever payload arrives under it."""
    by_event = payloads_by_event()
    samples = [p for ps in by_event.values() for p in ps]
    candidates = set(by_event) | {"push", "issues", "pull_request_review", "check_suites", "star"}
    acted_on = {
        event
        for event in candidates
        for payload in samples
        if not isinstance(map_github_event(event, payload, bot_logins=BOT), Ignore)
    }
    assert acted_on == HANDLED_GITHUB_EVENTS


def test_a_pull_request_says_whether_its_head_lives_in_a_fork() -> None:
    payload = example("pull_request.opened")
    same = map_github_event("pull_request", payload, bot_logins=BOT)
    assert isinstance(same, ChangeOpened)
    assert (same.from_fork, same.head_repository) == (False, "Codertocat/Hello-World")
    payload["pull_request"]["head"]["repo"]["full_name"] = "forker/Hello-World"
    fork = map_github_event("pull_request", payload, bot_logins=BOT)
    assert isinstance(fork, ChangeOpened)
    assert (fork.from_fork, fork.head_repository) == (True, "forker/Hello-World")
    payload["pull_request"]["head"]["repo"] = None  # the fork was deleted
    gone = map_github_event("pull_request", payload, bot_logins=BOT)
    assert isinstance(gone, ChangeOpened)
    assert gone.from_fork is True


def test_aac_approve_in_a_comment_asks_to_release_a_forks_run() -> None:
    payload = {**RERUN_COMMENT, "comment": {"body": "LGTM\n/aac approve", "user": {"login": "m"}}}
    event = map_github_event("issue_comment", payload, bot_logins=BOT)
    assert isinstance(event, RunApproved)
    assert (event.repository, event.number, event.requested_by) == ("o/r", 3, "m")
    assert event.needs_permission_check


def test_a_workflow_run_says_whether_its_commit_comes_from_a_fork() -> None:
    payload = example("workflow_run.completed")
    same = map_github_event("workflow_run", payload, bot_logins=BOT)
    assert isinstance(same, PipelineFinished)
    assert same.from_fork is False
    payload["workflow_run"]["head_repository"]["full_name"] = "forker/octo-repo"
    fork = map_github_event("workflow_run", payload, bot_logins=BOT)
    assert isinstance(fork, PipelineFinished)
    assert fork.from_fork is True
