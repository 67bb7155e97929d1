"""The queue's guards for keyed jobs: one making way for its queued duplicate."""

from __future__ import annotations

from datetime import timedelta

from bot.runtime import Runtime
from storage import queue
from storage.models import Job
from storage.queue import Backoff, ClaimedJob, JobStatus
from storage.types import utcnow


async def _enqueue(runtime: Runtime, key: str | None = None, **kw: object) -> int:
    async with runtime.sessions.begin() as session:
        return await queue.enqueue(session, "publish", {}, unique_key=key, **kw)  # type: ignore[arg-type]


async def _claim(
    runtime: Runtime,
    worker: str,
    together: bool,
    *,
    done: list[int] | None = None,
    lease: float = 30,
    limit: int = 10,
) -> list[ClaimedJob]:
    """Claim as a worker does: on its own connection, committed at once."""
    async with runtime.engine.connect() as conn:
        if together:
            _held, claimed = await queue.complete_and_claim(
                conn, worker, done or [], lease_seconds=lease, limit=limit
            )
        else:
            if done:
                await queue.complete_many(conn, done, worker)
            claimed = await queue.claim(conn, worker, lease_seconds=lease, limit=limit)
        await conn.commit()
    return claimed


async def _job(runtime: Runtime, job_id: int) -> Job:
    async with runtime.sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def test_a_keyed_job_that_goes_back_to_the_queue_yields_to_its_queued_duplicate(
    runtime: Runtime,
) -> None:
    """A job that fails or is rescheduled while a duplicate waits: the duplicate does the work,
    no earlier than the job would have run again."""
    first = await _enqueue(runtime, "publish:1")
    [held] = await _claim(runtime, "w", False)
    second = await _enqueue(runtime, "publish:1")
    before = utcnow()
    async with runtime.sessions.begin() as session:
        status = await queue.fail(session, held, "w", "boom", backoff=Backoff(60, 60))
    assert status == JobStatus.DONE
    row = await _job(runtime, first)
    assert (row.status, row.locked_by, row.lease_expires_at) == (JobStatus.DONE, None, None)
    assert row.last_error == f"boom; job {second}, queued with the same key, does its work"
    waiting = await _job(runtime, second)
    assert waiting.status == JobStatus.QUEUED
    assert waiting.run_at >= before + timedelta(seconds=30)

    # The same for a rescheduled job (a rate limit, a shutdown).
    async with runtime.sessions.begin() as session:
        await session.execute(
            Job.__table__.update().where(Job.id == second).values(run_at=utcnow())  # type: ignore[attr-defined]
        )
    [held] = await _claim(runtime, "w", False)
    assert held.id == second
    third = await _enqueue(runtime, "publish:1")
    retry_at = utcnow() + timedelta(minutes=5)
    async with runtime.sessions.begin() as session:
        await queue.reschedule(session, held, "w", retry_at, "rate limited")
    assert (await _job(runtime, second)).status == JobStatus.DONE
    waiting = await _job(runtime, third)
    assert waiting.status == JobStatus.QUEUED
    assert abs((waiting.run_at - retry_at).total_seconds()) < 1
    assert waiting.attempts == 0
