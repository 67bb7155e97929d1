"""Backoff, jitter bounds, Retry-After parsing and the time budget."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.reporter.retry import (
    RetryPolicy,
    backoff_delay,
    is_retryable_status,
    next_delay,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("rng", "expected"), [(0.0, [0.5, 1, 2, 4, 8, 15]), (1.0, [1, 2, 4, 8, 16, 30])]
)
def test_backoff_doubles_within_jitter_bounds_and_caps(rng: float, expected: list[float]) -> None:
    policy = RetryPolicy(rng=lambda: rng, base_delay=1.0, max_delay=30.0)

    assert [backoff_delay(n, policy) for n in range(1, 7)] == expected


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3, rng=lambda: 0.0)

    assert next_delay(2, policy, elapsed=0) == 1.0
    assert next_delay(3, policy, elapsed=0) is None


def test_total_time_is_bounded() -> None:
    policy = RetryPolicy(max_elapsed=10, rng=lambda: 1.0)

    assert next_delay(3, policy, elapsed=5) == 4.0
    assert next_delay(3, policy, elapsed=7) is None


def test_retry_after_replaces_backoff_but_not_the_bounds() -> None:
    policy = RetryPolicy(max_retry_after=60, max_elapsed=100)

    assert next_delay(1, policy, elapsed=0, retry_after=42) == 42
    assert next_delay(1, policy, elapsed=0, retry_after=61) is None
    assert next_delay(1, policy, elapsed=80, retry_after=30) is None


def test_parse_retry_after() -> None:
    now = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)

    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Sat, 01 Jun 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sat, 01 Jun 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (408, True),
        (429, True),
        (500, True),
        (503, True),
        (599, True),
        (400, False),
        (401, False),
        (404, False),
        (413, False),
        (422, False),
    ],
)
def test_retryable_statuses(status: int, retry: bool) -> None:
    assert is_retryable_status(status) is retry
