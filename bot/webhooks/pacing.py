"""Intake first: the in-process worker yields the CPU and the SQLite writer to webhook intake.

GitHub waits 10 s for an answer and a queued job can wait longer, so during a burst of
deliveries the worker claims only in the gaps between them, with a floor so that it never
stops: after ``patience`` seconds without a gap it claims a few jobs anyway.
"""

from __future__ import annotations

import asyncio

from bot.webhooks.intake import DeliveryWriter

# This long without a delivery, and none being written, lets the worker claim freely.
QUIET_SECONDS = 0.25
PATIENCE_SECONDS = 1.0
BURST_CLAIM = 1


class IntakeFirstPacer:
    """A ``bot.worker.Pacer`` that defers claims while deliveries keep arriving."""

    def __init__(
        self,
        writer: DeliveryWriter,
        *,
        quiet: float = QUIET_SECONDS,
        patience: float = PATIENCE_SECONDS,
        burst_claim: int = BURST_CLAIM,
    ) -> None:
        self.writer = writer
        self.quiet = quiet
        self.patience = patience
        self.burst_claim = burst_claim

    async def __call__(self, free: int) -> int:
        """All free slots after a quiet gap; a few once ``patience`` runs out in a burst."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        while True:
            now = loop.time()
            quiet_for = now - self.writer.last_arrival
            if quiet_for >= self.quiet and not self.writer.in_flight:
                return free
            if now >= deadline:
                return min(free, self.burst_claim)
            await asyncio.sleep(max(0.005, min(self.quiet - quiet_for, deadline - now)))
