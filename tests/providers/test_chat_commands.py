"""``/aac`` commands as every SCM's inbound half reads them: ``/aac run [SUITE]`` beside
``rerun``, ``reanalyse`` and ``approve``, parsed once in providers/events.py."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from providers.azure_devops.inbound import parse_event as azure_event
from providers.events import (
    COMMAND_SEARCH_CHARS,
    Command,
    Event,
    RerunRequested,
    RunApproved,
    RunRequested,
    parse_command,
)
from providers.github.inbound import parse_event as github_event
from providers.gitlab.inbound import parse_event as gitlab_event

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/aac run", Command("run", False, None)),
        ("/aac run nightly", Command("run", False, "nightly")),
        ("Please:\n  /aac RUN nightly now", Command("run", False, "nightly")),
        ("/aac run\nnightly", Command("run", False, None)),  # the suite is on the same line
        ("/aac rerun", Command("rerun", False, None)),
        ("/aac rerun nightly", Command("rerun", False, None)),  # rerun takes no argument
        ("/aac reanalyze", Command("reanalyse", True, None)),
        ("/aac approve", Command("approve", False, None)),
        ("/aac runner", None),
        ("say /aac run mid-line", None),
        ("\t/aac\treanalyse", Command("reanalyse", True, None)),
        ("/aac\nrerun", None),  # a command is written on one line
        ("\n\n  \n/aac rerun", Command("rerun", False, None)),
    ],
)
def test_parse_command(text: str, expected: Command | None) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize("filler", ["\n", " \n", "\n\t "], ids=["newlines", "pairs", "mixed"])
def test_a_megabyte_of_blank_lines_parses_at_once(filler: str) -> None:
    # A guard, not a benchmark: a pattern that backtracks across lines took minutes here.
    blank = filler * (1_000_000 // len(filler))
    started = time.perf_counter()
    assert parse_command(blank) is None
    assert time.perf_counter() - started < 0.5


def test_only_the_first_64_kib_of_a_comment_are_searched() -> None:
    head = "x" * (COMMAND_SEARCH_CHARS - len("\n/aac rerun"))
    assert parse_command(head + "\n/aac rerun") == Command("rerun", False, None)
    assert parse_command(head + "x\n/aac rerun") is None


def _load(*parts: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURES.joinpath(*parts).read_text())
    return data


def _github(body: str) -> Event:
    payload = {
        "action": "created",
        "issue": {"number": 3, "pull_request": {"url": "x"}},
        "comment": {"body": body, "user": {"login": "dev"}},
        "repository": {"full_name": "o/r"},
        "sender": {"login": "dev"},
    }
    return github_event("issue_comment", payload, bot_logins=set())


def _gitlab(body: str) -> Event:
    payload = _load("gitlab", "webhooks", "note.merge_request.json")
    payload["object_attributes"]["note"] = body
    return gitlab_event("Note Hook", payload, bot_logins=set())


def _azure(body: str) -> Event:
    payload = _load("azure_devops", "webhooks", "ms.vss-code.git-pullrequest-comment-event.json")
    payload["resource"]["comment"]["content"] = body
    return azure_event(payload["eventType"], payload, bot_logins=set())


def expected_change(parse: Callable[[str], Event]) -> tuple[int, str, str]:
    """The change, author and repository each SCM's sample comment names."""
    return {
        _github: (3, "dev", "o/r"),
        _gitlab: (1, "root", "gitlab-org/gitlab-test"),
        _azure: (1, "54d125f7-69f7-4191-904f-c5b96b6261c8", "Fabrikam/Fabrikam"),
    }[parse]


@pytest.mark.parametrize("parse", [_github, _gitlab, _azure], ids=["github", "gitlab", "azure"])
def test_every_scm_turns_aac_run_into_a_permission_checked_manual_start(
    parse: Callable[[str], Event],
) -> None:
    named = parse("Tonight's suite, please:\n/aac run nightly")
    assert isinstance(named, RunRequested)
    assert (named.suite, named.needs_permission_check) == ("nightly", True)
    assert (named.number, named.requested_by, named.repository) == expected_change(parse)
    every = parse("/aac run")
    assert isinstance(every, RunRequested)
    assert every.suite is None
    assert isinstance(parse("/aac rerun"), RerunRequested)


@pytest.mark.parametrize(
    ("text", "verb"),
    [
        ("/aac rerun", "rerun"),
        ("/aac reanalyze", "reanalyse"),
        ("/aac approve", "approve"),
        ("/aac run nightly", "run"),
    ],
)
def test_each_chat_command_event_names_its_verb_for_a_refusal(text: str, verb: str) -> None:
    event = _gitlab(text)
    assert isinstance(event, RerunRequested | RunApproved | RunRequested)
    assert event.command == verb
