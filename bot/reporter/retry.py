"""When to try a request again: exponential backoff with jitter, Retry-After, bounded time."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Statuses worth another try: the request may well succeed later unchanged.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds on retrying; `sleep`, `clock` and `rng` are injectable so tests run instantly."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    # A server asking for longer than this is treated as down for our purposes.
    max_retry_after: float = 120.0
    max_elapsed: float = 300.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    clock: Callable[[], float] = field(default=time.monotonic)
    rng: Callable[[], float] = field(default=random.random)


def is_retryable_status(status: int) -> bool:
    """True for 408, 429 and the 5xx family."""
    return status in RETRY_STATUSES or 500 <= status <= 599


def backoff_delay(attempt: int, policy: RetryPolicy) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based), with equal jitter."""
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1))
    # Half fixed, half random: spreads a thundering herd without ever retrying at once.
    return ceiling / 2 + policy.rng() * ceiling / 2


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def next_delay(
    attempt: int, policy: RetryPolicy, elapsed: float, retry_after: float | None = None
) -> float | None:
    """The wait before attempt `attempt + 1`, or None when the attempts or time are spent."""
    if attempt >= policy.max_attempts:
        return None
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return None
        delay = max(retry_after, 0.0)
    else:
        delay = backoff_delay(attempt, policy)
    if elapsed + delay > policy.max_elapsed:
        return None
    return delay
