"""The pure halves of the App's webhook administration: the redelivery plan and drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from providers.base import ProviderError
from providers.github.hook_admin import Delivery, drift, parse_delivery, plan_redeliveries
from providers.github.manifest import parse_manifest
from providers.github.redeliver import parse_duration

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def attempt(n: int, guid: str, status: int, hours_ago: float) -> Delivery:
    return Delivery(n, guid, NOW - timedelta(hours=hours_ago), status, "pull_request", False)


def test_the_plan_takes_the_latest_failure_of_each_undelivered_event() -> None:
    attempts = [
        attempt(1, "a", 502, 3),
        attempt(2, "a", 504, 2),  # latest failure of a
        attempt(3, "b", 500, 2),
        attempt(4, "b", 200, 1),  # b got through since
        attempt(5, "c", 0, 9),  # before the window
        attempt(6, "d", 400, 1),  # refused by the bot
        attempt(7, "e", 429, 1),  # the bot was overloaded: worth another try
    ]
    since = NOW - timedelta(hours=8)
    assert [d.id for d in plan_redeliveries(attempts, since)] == [2, 7]
    assert [d.id for d in plan_redeliveries(attempts, since, include_refused=True)] == [2, 6, 7]


def test_a_success_before_a_later_failure_still_counts_as_delivered() -> None:
    attempts = [attempt(1, "a", 200, 3), attempt(2, "a", 502, 1)]
    assert plan_redeliveries(attempts, NOW - timedelta(hours=8)) == []


def test_deliveries_are_parsed_from_githubs_shape() -> None:
    parsed = parse_delivery(
        {
            "id": 12345678,
            "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
            "delivered_at": "2019-06-03T00:57:16Z",
            "redelivery": False,
            "status_code": 502,
            "event": "issues",
        }
    )
    assert parsed.delivered_at == datetime(2019, 6, 3, 0, 57, 16, tzinfo=UTC)
    assert not parsed.succeeded
    with pytest.raises(ProviderError, match="malformed webhook delivery"):
        parse_delivery({"id": 1})


def test_drift_by_permission_level_and_event() -> None:
    manifest = parse_manifest(
        "name: x\nurl: https://x\nhook_attributes: {url: https://x/h}\n"
        "default_permissions: {checks: write, contents: read}\n"
        "default_events: [pull_request, check_run]\n",
        public_url="https://x",
    )
    same = drift(
        manifest,
        {
            "permissions": {"checks": "write", "contents": "read"},
            "events": ["check_run", "pull_request"],
        },
    )
    assert same.none
    found = drift(
        manifest,
        {"permissions": {"checks": "read", "contents": "write"}, "events": ["push", "check_run"]},
    )
    assert dict(found.permissions_to_raise) == {"checks": ("read", "write")}
    assert dict(found.permissions_beyond) == {"contents": ("write", "read")}
    assert found.events_missing == ("pull_request",)
    assert found.events_extra == ("push",)
    assert len(found.lines()) == 4


@pytest.mark.parametrize(
    ("text", "seconds"), [("8h", 8 * 3600), ("30m", 1800), ("1d12h", 36 * 3600), ("45s", 45)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "8", "h", "8x", "8h30", "-1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
