"""The durable job queue: jobs are rows, claimed under leases, retried with backoff.

Enqueueing takes the caller's session, so accepting an event and queuing its work commit
together. Claiming is one atomic UPDATE ... RETURNING; on PostgreSQL the candidate rows are
picked with FOR UPDATE SKIP LOCKED so many workers never contend for the same row.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Job
from storage.types import utcnow

NOTIFY_CHANNEL = "aac_jobs"
# PostgreSQL serialises the commits of transactions that NOTIFY. Under a stream of enqueues one
# notification per interval wakes idle workers; busy workers claim again without waiting, and
# a job enqueued inside the interval waits at most one poll interval.
NOTIFY_INTERVAL_SECONDS = 0.05
MAX_ERROR_CHARS = 4000


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter between ``base`` and ``cap`` seconds."""

    base: float = 2.0
    cap: float = 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt + 1``."""
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker holds under a lease: plain data, detached from any session."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    unique_key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int = 5,
) -> int:
    """Add a job in the caller's transaction; a pending job with the same unique key wins."""
    if unique_key is not None:
        existing = await _pending_with_key(session, unique_key)
        if existing is not None:
            return existing
    now = utcnow()
    # A Core INSERT ... RETURNING: the ORM's unit-of-work bookkeeping costs more than the
    # statement itself on the enqueue hot path.
    stmt = (
        insert(Job)
        .values(
            kind=kind,
            payload=payload or {},
            unique_key=unique_key,
            status=JobStatus.QUEUED,
            attempts=0,
            max_attempts=max_attempts,
            run_at=run_at or now,
            created_at=now,
        )
        .returning(Job.id)
    )
    if unique_key is None:
        job_id = int((await session.execute(stmt)).scalar_one())
    else:
        try:
            async with session.begin_nested():
                job_id = int((await session.execute(stmt)).scalar_one())
        except IntegrityError:
            # Another transaction queued the same key between our check and insert.
            existing = await _pending_with_key(session, unique_key)
            if existing is None:
                raise
            return existing
    if session.get_bind().dialect.name == "postgresql" and _throttle.due():
        await session.execute(
            text("SELECT pg_notify(:channel, :kind)"),
            {
                "channel": NOTIFY_CHANNEL,
                "kind": kind,
            },
        )
    return job_id


class _NotifyThrottle:
    """At most one NOTIFY per interval from this process."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True


_throttle = _NotifyThrottle(NOTIFY_INTERVAL_SECONDS)


async def _pending_with_key(session: AsyncSession, unique_key: str) -> int | None:
    result = await session.execute(
        select(Job.id).where(Job.unique_key == unique_key, Job.status == JobStatus.QUEUED)
    )
    return result.scalar_one_or_none()


async def claim(
    session: AsyncSession,
    worker_id: str,
    *,
    lease_seconds: float,
    limit: int = 1,
    kinds: list[str] | None = None,
) -> list[ClaimedJob]:
    """Atomically take up to ``limit`` due jobs (or jobs whose lease expired) for ``worker_id``.

    The caller commits right after, so the lease is visible to other workers.
    """
    now = utcnow()
    due = or_(
        and_(Job.status == JobStatus.QUEUED, Job.run_at <= now),
        and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now),
    )
    candidates = select(Job.id).where(due)
    if kinds:
        candidates = candidates.where(Job.kind.in_(kinds))
    candidates = candidates.order_by(Job.run_at, Job.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    # A CTE, not ``IN (subquery)``: PostgreSQL may re-run a LIMITed subquery per row and
    # hand out more rows than asked for.
    picked = candidates.cte("picked")
    stmt = (
        update(Job)
        .where(Job.id == picked.c.id)
        .values(
            status=JobStatus.RUNNING,
            locked_by=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=Job.attempts + 1,
        )
        .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts)
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(stmt)).all()
    return sorted(
        (ClaimedJob(r.id, r.kind, r.payload, r.attempts, r.max_attempts) for r in rows),
        key=lambda job: job.id,
    )


async def renew_leases(
    session: AsyncSession, worker_id: str, job_ids: list[int], *, lease_seconds: float
) -> int:
    """Extend the leases this worker still holds; returns how many it still holds."""
    if not job_ids:
        return 0
    result = await session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.locked_by == worker_id, Job.status == JobStatus.RUNNING)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def complete(session: AsyncSession, job_id: int, worker_id: str) -> bool:
    """Mark a held job done; False if the lease was lost to another worker."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.status == JobStatus.RUNNING)
        .values(status=JobStatus.DONE, finished_at=utcnow(), lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def complete_many(session: AsyncSession, job_ids: list[int], worker_id: str) -> set[int]:
    """Mark several held jobs done in one statement; returns the ids this worker still held."""
    if not job_ids:
        return set()
    rows = await session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.locked_by == worker_id, Job.status == JobStatus.RUNNING)
        .values(status=JobStatus.DONE, finished_at=utcnow(), lease_expires_at=None)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    return {int(row_id) for row_id in rows.scalars()}


async def fail(
    session: AsyncSession,
    job: ClaimedJob,
    worker_id: str,
    error: str,
    *,
    backoff: Backoff = Backoff(),
) -> str:
    """Record a failed attempt: requeue with backoff, or park as dead after the last attempt.

    Returns the job's new status.
    """
    dead = job.attempts >= job.max_attempts
    values: dict[str, Any] = {
        "last_error": error[:MAX_ERROR_CHARS],
        "locked_by": None,
        "lease_expires_at": None,
    }
    if dead:
        values.update(status=JobStatus.DEAD, finished_at=utcnow())
    else:
        values.update(
            status=JobStatus.QUEUED,
            run_at=utcnow() + timedelta(seconds=backoff.delay(job.attempts)),
        )
    await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.locked_by == worker_id, Job.status == JobStatus.RUNNING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return JobStatus.DEAD if dead else JobStatus.QUEUED


async def reschedule(
    session: AsyncSession, job: ClaimedJob, worker_id: str, run_at: datetime, reason: str
) -> None:
    """Put a held job back for later without spending an attempt (rate limits, shutdown)."""
    await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.locked_by == worker_id, Job.status == JobStatus.RUNNING)
        .values(
            status=JobStatus.QUEUED,
            run_at=run_at,
            attempts=Job.attempts - 1,
            locked_by=None,
            lease_expires_at=None,
            last_error=reason[:MAX_ERROR_CHARS],
        )
        .execution_options(synchronize_session=False)
    )


async def retry_dead(session: AsyncSession, job_id: int) -> bool:
    """Re-queue a dead job with a fresh set of attempts; False if it is not dead."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.DEAD)
        .values(status=JobStatus.QUEUED, attempts=0, run_at=utcnow(), finished_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_jobs(
    session: AsyncSession, *, status: str | None = None, limit: int = 50
) -> list[Job]:
    """Newest jobs first, optionally of one status."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    return list((await session.execute(query)).scalars())


async def counts_by_status(session: AsyncSession) -> dict[str, int]:
    """How many jobs are in each status."""
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: int(count) for status, count in rows.all()}


async def purge_done(session: AsyncSession, older_than: datetime) -> int:
    """Delete finished jobs older than a cut-off; returns how many."""
    result = await session.execute(
        delete(Job).where(Job.status == JobStatus.DONE, Job.finished_at < older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
