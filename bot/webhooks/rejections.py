"""Logging rejected webhooks without letting a flood of forged requests flood the log."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable


class RejectionLog:
    """The first rejection is logged at once; later ones are counted per reason and logged as
    one summary line at most every ``interval`` seconds. No request data is ever logged."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._counts: Counter[str] = Counter()
        self._window_start = clock()
        self._next_flush = float("-inf")

    def record(self, reason: str) -> None:
        """Count one rejection; log the counts when the current window is over."""
        self._counts[reason] += 1
        now = self.clock()
        if now >= self._next_flush:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Log what was counted since the last line (nothing when nothing was)."""
        now = self.clock() if now is None else now
        if self._counts:
            self.logger.warning(
                "webhooks rejected",
                extra={
                    "rejected": dict(self._counts),
                    "seconds": round(max(0.0, now - self._window_start), 1),
                },
            )
            self._counts.clear()
        self._window_start = now
        self._next_flush = now + self.interval
