"""Request rate limits (token bucket, per process): per organisation, and per client address
for failed authentications."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``per_minute`` requests per key, refilled continuously, bursting up to the same amount."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[object, _Bucket] = {}

    def acquire(self, key: object) -> int | None:
        """Take one token; None when allowed, else seconds until one is available."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return self._wait(bucket)

    def blocked(self, key: object) -> int | None:
        """Seconds until ``key`` has a token again, or None if it has one (none is taken)."""
        bucket = self._refilled(key)
        return None if bucket.tokens >= 1 else self._wait(bucket)

    def _refilled(self, key: object) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def _wait(self, bucket: _Bucket) -> int:
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))
