"""Periodic jobs: work queued once per period by whichever worker looks first.

Every worker looks every ``check_seconds`` and, for each periodic job whose period (counted
on the database's clock, so skewed hosts agree) has begun, advances the job's counter to that
period and enqueues the job in the same transaction. The counter moves once per period, so N
workers queue it once; the unique key coalesces with a run still waiting from the period
before. A period missed while no worker ran is queued once, not once per missed period.
The first period a deployment sees only starts the count: a fresh install or a new periodic
job does its first run when the next period begins, not at every first start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import counters, queue
from storage.clock import db_epoch


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """A job kind to run every ``every`` seconds."""

    kind: str
    every: float
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def counter(self) -> str:
        return f"periodic:{self.kind}"


async def enqueue_due(session: AsyncSession, jobs: Sequence[PeriodicJob]) -> list[int]:
    """Enqueue, in the caller's transaction, each job whose current period has not been
    queued by any process yet; returns the ids of the jobs queued."""
    if not jobs:
        return []
    now = float(
        (await session.execute(select(db_epoch(session.get_bind().dialect.name)))).scalar_one()
    )
    queued: list[int] = []
    for job in jobs:
        period = int(now // job.every)
        if await counters.advance(session, job.counter, period, creating_counts=False):
            queued.append(
                await queue.enqueue(
                    session, job.kind, {**job.payload, "period": period}, unique_key=job.counter
                )
            )
    return queued
