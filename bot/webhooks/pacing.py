"""Intake first: the in-process worker yields the CPU and the SQLite writer to webhook intake.

GitHub waits 10 s for an answer and a queued job can wait longer, so during a flood of webhook
requests (accepted or rejected: answering a flood of forged ones fast matters too) the worker
claims only in the gaps between them, with a floor so that it never stops: after ``patience``
seconds without a gap it claims ``burst_claim`` jobs anyway.

Only a flood counts. At the rates a busy organisation really sends, intake takes a few percent
of a core and the worker keeps up with what arrives; deferring it then would only grow a
backlog that never drains while requests keep coming (one job a second would be the floor).
"""

from __future__ import annotations

import asyncio
import time

# This long without a request, and no delivery being written, lets the worker claim freely.
QUIET_SECONDS = 0.25
PATIENCE_SECONDS = 1.0
BURST_CLAIM = 1
# Requests per second (per process) from which intake comes first. A request costs intake about
# 0.2-0.3 ms of CPU and its job about 1.2 ms, so past roughly 700/s one core cannot do both;
# below 500/s the worker keeps pace and deferring it gains nothing.
BUSY_RATE = 500.0
# The request rate is measured over windows this long.
RATE_WINDOW_SECONDS = 0.2


class IntakeActivity:
    """What the webhook endpoint is doing, as the pacer sees it."""

    def __init__(self, *, window: float = RATE_WINDOW_SECONDS) -> None:
        self.last_request = float("-inf")  # time.monotonic() of the latest webhook request
        self.writing = 0  # deliveries waiting for their group commit
        self.rate = 0.0  # requests per second over the latest complete window
        self.window = window
        self._window_start = time.monotonic()
        self._window_count = 0

    def saw_request(self) -> None:
        now = time.monotonic()
        self.last_request = now
        self._window_count += 1
        elapsed = now - self._window_start
        if elapsed >= self.window:
            # A window that spans an idle spell averages it in: a lone request after a quiet
            # minute reads as a trickle, not a flood.
            self.rate = self._window_count / elapsed
            self._window_count = 0
            self._window_start = now


class IntakeFirstPacer:
    """A ``bot.worker.Pacer`` that defers claims while webhook requests keep arriving."""

    def __init__(
        self,
        activity: IntakeActivity,
        *,
        quiet: float = QUIET_SECONDS,
        patience: float = PATIENCE_SECONDS,
        burst_claim: int = BURST_CLAIM,
        busy_rate: float = BUSY_RATE,
    ) -> None:
        self.activity = activity
        self.quiet = quiet
        self.patience = patience
        self.burst_claim = burst_claim
        self.busy_rate = busy_rate

    async def __call__(self, free: int) -> int:
        """All free slots unless a flood is on; then a quiet gap, or ``burst_claim`` slots once
        ``patience`` runs out."""
        deadline = time.monotonic() + self.patience
        activity = self.activity
        while True:
            now = time.monotonic()
            quiet_for = now - activity.last_request
            flooding = activity.rate >= self.busy_rate
            if not flooding or (quiet_for >= self.quiet and not activity.writing):
                return free
            if now >= deadline:
                return min(free, self.burst_claim)
            await asyncio.sleep(max(0.005, min(self.quiet - quiet_for, deadline - now)))
