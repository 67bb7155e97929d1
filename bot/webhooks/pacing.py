"""Intake first: the in-process worker yields the CPU and the SQLite writer to webhook intake.

GitHub waits 10 s for an answer and a queued job can wait longer, so while webhook requests
keep arriving (accepted or rejected: answering a flood of forged ones fast matters too) the
worker claims only in the gaps between them, with a floor so that it never stops: after
``patience`` seconds without a gap it claims ``burst_claim`` jobs anyway.
"""

from __future__ import annotations

import asyncio
import time

# This long without a request, and no delivery being written, lets the worker claim freely.
QUIET_SECONDS = 0.25
PATIENCE_SECONDS = 1.0
BURST_CLAIM = 1


class IntakeActivity:
    """What the webhook endpoint is doing, as the pacer sees it."""

    def __init__(self) -> None:
        self.last_request = float("-inf")  # time.monotonic() of the latest webhook request
        self.writing = 0  # deliveries waiting for their group commit

    def saw_request(self) -> None:
        self.last_request = time.monotonic()


class IntakeFirstPacer:
    """A ``bot.worker.Pacer`` that defers claims while webhook requests keep arriving."""

    def __init__(
        self,
        activity: IntakeActivity,
        *,
        quiet: float = QUIET_SECONDS,
        patience: float = PATIENCE_SECONDS,
        burst_claim: int = BURST_CLAIM,
    ) -> None:
        self.activity = activity
        self.quiet = quiet
        self.patience = patience
        self.burst_claim = burst_claim

    async def __call__(self, free: int) -> int:
        """All free slots after a quiet gap; ``burst_claim`` once ``patience`` runs out."""
        deadline = time.monotonic() + self.patience
        while True:
            now = time.monotonic()
            quiet_for = now - self.activity.last_request
            if quiet_for >= self.quiet and not self.activity.writing:
                return free
            if now >= deadline:
                return min(free, self.burst_claim)
            await asyncio.sleep(max(0.005, min(self.quiet - quiet_for, deadline - now)))
