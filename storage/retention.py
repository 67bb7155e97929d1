"""Pruning what outlived its use: finished jobs, webhook deliveries, per-test results.

Each batch is its own short transaction deleting at most ``batch`` rows picked by primary
key, so neither engine holds a long lock: on SQLite the single writer is free again between
batches, on PostgreSQL no statement holds many row locks for long.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Job, TestCycle, TestResultRow, WebhookDelivery
from storage.queue import JobStatus
from storage.types import utcnow

DEFAULT_BATCH = 500


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days each kind of row is kept."""

    jobs_days: int
    deliveries_days: int
    history_days: int


@dataclass(slots=True)
class PruneReport:
    jobs: int = 0
    deliveries: int = 0
    results: int = 0


async def prune(
    sessions: async_sessionmaker[AsyncSession],
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    batch: int = DEFAULT_BATCH,
) -> PruneReport:
    """Delete rows older than the policy allows, in batches; returns how many of each."""
    now = now or utcnow()
    report = PruneReport()
    # Done jobs only: dead ones wait for an operator, queued and running ones are live.
    report.jobs = await _in_batches(
        sessions,
        Job.id,
        (Job.status == JobStatus.DONE, Job.finished_at < now - timedelta(policy.jobs_days)),
        batch,
    )
    # Processed deliveries only: a delivery whose job has not run yet is still needed.
    report.deliveries = await _in_batches(
        sessions,
        WebhookDelivery.id,
        (
            WebhookDelivery.processed_at.is_not(None),
            WebhookDelivery.received_at < now - timedelta(policy.deliveries_days),
        ),
        batch,
    )
    # Per-test results of old cycles; the cycles keep their totals for the history chart.
    old_cycles = select(TestCycle.id).where(
        TestCycle.created_at < now - timedelta(policy.history_days)
    )
    report.results = await _in_batches(
        sessions, TestResultRow.id, (TestResultRow.cycle_id.in_(old_cycles),), batch
    )
    return report


async def _in_batches(
    sessions: async_sessionmaker[AsyncSession],
    key: Any,
    conditions: tuple[ColumnElement[bool], ...],
    batch: int,
) -> int:
    total = 0
    model = key.class_
    while True:
        async with sessions.begin() as session:
            ids = list(
                (
                    await session.execute(select(key).where(*conditions).order_by(key).limit(batch))
                ).scalars()
            )
            if ids:
                await session.execute(
                    delete(model).where(key.in_(ids)).execution_options(synchronize_session=False)
                )
        total += len(ids)
        if len(ids) < batch:
            return total
        await asyncio.sleep(0)  # let other writers in between batches
