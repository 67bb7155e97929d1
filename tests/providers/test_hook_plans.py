"""The plan arithmetic both ``hooks apply`` commands share, and the GitLab plan's matching
rules that the fake-backed tests do not reach (a moved public URL, duplicates)."""

from __future__ import annotations

import pytest

from providers.base import AuthFailed
from providers.gitlab.hooks import ExistingHook, Hook, Target, desired_hooks, load_manifest, plan
from providers.hook_plans import Change, apply_plan, ordered, outcome_lines, summary

NEW = "https://bot.example/webhooks/gitlab/acme"
OLD = "https://old.example/webhooks/gitlab/acme"
PROJECT = Target("project", "acme/app")


def wanted() -> list[Hook]:
    return desired_hooks(load_manifest("projects: [acme/app]\n", source="f"), NEW)


def existing(hook_id: int, url: str) -> ExistingHook:
    return ExistingHook(hook_id, url, dict(wanted()[0].flags), True)


def test_a_hook_at_an_earlier_url_is_moved_not_duplicated() -> None:
    changes = plan(
        wanted(), {PROJECT: [existing(7, OLD)]}, our_urls={NEW, OLD}, send_secret=False, prune=False
    )

    assert [(c.action, c.remote_id) for c in changes] == [("update", "7")]
    assert changes[0].why == (f"url {OLD} -> {NEW}",)


def test_a_second_hook_of_ours_is_deleted_only_with_prune_and_others_are_never_touched() -> None:
    hooks = {PROJECT: [existing(9, NEW), existing(3, NEW), existing(5, "https://ci.example/x")]}

    kept = plan(wanted(), hooks, our_urls={NEW}, send_secret=False, prune=False)
    pruned = plan(wanted(), hooks, our_urls={NEW}, send_secret=False, prune=True)

    assert [(c.action, c.remote_id) for c in kept] == [("noop", "3"), ("keep", "9")]
    assert [(c.action, c.remote_id) for c in pruned] == [("noop", "3"), ("delete", "9")]
    assert pruned[1].why == ("a second hook at the bot's URL",)


def test_sending_the_secret_turns_every_no_op_into_an_update() -> None:
    changes = plan(
        wanted(), {PROJECT: [existing(3, NEW)]}, our_urls={NEW}, send_secret=True, prune=False
    )

    assert [(c.action, c.why) for c in changes] == [("update", ("secret token sent again",))]


def change(action: str, where: str) -> Change[str]:
    return Change(action, where, where)  # type: ignore[arg-type]


def test_deletes_come_last_and_the_summary_counts_each_action() -> None:
    changes = [
        change("delete", "d"),
        change("noop", "n"),
        change("create", "c"),
        change("keep", "k"),
    ]

    assert [c.where for c in ordered(changes)] == ["c", "n", "k", "d"]
    assert summary(changes) == (
        "1 to create, 0 to update, 1 unchanged, 1 to delete, "
        "1 no longer in the file (kept; --prune deletes them)"
    )


async def test_an_apply_stops_at_the_first_refusal_and_says_what_was_and_was_not_applied() -> None:
    written: list[str] = []

    async def write(c: Change[str]) -> None:
        if c.where == "b":
            raise AuthFailed("no")
        written.append(c.where)

    changes = [
        change("create", "a"),
        change("noop", "x"),
        change("create", "b"),
        change("delete", "c"),
    ]
    outcome = await apply_plan(changes, write)

    assert written == ["a"]
    assert not outcome.ok
    assert [c.where for c in outcome.applied] == ["a"]
    assert [c.where for c in outcome.not_applied] == ["c"]
    lines = outcome_lines(outcome, reason="the reason")
    assert lines[0] == "change 2 of 3 failed: create  b: the reason"
    assert lines[1:] == [
        "applied (1):",
        "  create  a",
        "not applied (2):",
        "  create  b",
        "  delete  c",
    ]


@pytest.mark.parametrize("action", ["noop", "keep"])
def test_changes_that_do_not_write_are_not_applied(action: str) -> None:
    assert not change(action, "x").writes
