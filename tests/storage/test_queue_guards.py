"""The queue's guards: one running job per unique key, a dead end for jobs that keep losing
their lease, and a keyed job making way for its queued duplicate. Claims go through both
paths a worker can use (``claim`` and ``complete_and_claim``, which is a single raw statement
on PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta

import pytest

from bot.runtime import Runtime
from bot.worker import Worker, WorkerConfig
from storage import queue
from storage.models import Job
from storage.queue import Backoff, ClaimedJob, JobStatus
from storage.types import utcnow


@pytest.fixture(params=["claim", "complete_and_claim"])
def together(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "complete_and_claim")


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


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.05)


async def test_a_keyed_job_waits_while_a_job_with_its_key_runs(
    runtime: Runtime, together: bool
) -> None:
    first = await _enqueue(runtime, "publish:1")
    assert [j.id for j in await _claim(runtime, "w1", together)] == [first]
    # Queued while the first runs: a new job, since the first may have read stale state.
    second = await _enqueue(runtime, "publish:1")
    assert second != first
    # Neither another worker nor the holder itself (one of its other slots) takes it.
    assert await _claim(runtime, "w2", together) == []
    assert await _claim(runtime, "w1", together) == []
    assert (await _job(runtime, second)).status == JobStatus.QUEUED
    # Finishing the first frees the key, in the same round trip as the next claim.
    assert [j.id for j in await _claim(runtime, "w1", together, done=[first])] == [second]
    assert (await _job(runtime, first)).status == JobStatus.DONE


async def test_a_key_whose_holder_lost_its_lease_runs_its_jobs_one_at_a_time(
    runtime: Runtime, together: bool
) -> None:
    first = await _enqueue(runtime, "publish:1")
    lease = 1.0
    expires = time.monotonic() + lease
    assert [j.id for j in await _claim(runtime, "hung", together, lease=lease)] == [first]
    second = await _enqueue(runtime, "publish:1")
    assert await _claim(runtime, "w2", together) == []
    await _sleep_until(expires)
    # The lease ran out: the key is free again for its oldest job, and only that one, so the
    # first job's retry and the second job never run side by side.
    [again] = await _claim(runtime, "w2", together)
    assert (again.id, again.attempts) == (first, 2)
    assert (await _job(runtime, second)).status == JobStatus.QUEUED
    assert await _claim(runtime, "w3", together) == []
    assert [j.id for j in await _claim(runtime, "w2", together, done=[first])] == [second]


async def test_when_the_holder_of_a_key_is_parked_dead_the_next_job_with_the_key_runs(
    runtime: Runtime, together: bool
) -> None:
    first = await _enqueue(runtime, "publish:1", max_attempts=1)
    lease = 1.0
    expires = time.monotonic() + lease
    await _claim(runtime, "hung", together, lease=lease)
    second = await _enqueue(runtime, "publish:1")
    assert await _claim(runtime, "w2", together) == []
    await _sleep_until(expires)
    # The claim that finds the first job's lease expired on its last attempt parks it dead;
    # its key is free from the next claim on.
    assert await _claim(runtime, "w2", together) == []
    assert (await _job(runtime, first)).status == JobStatus.DEAD
    assert [j.id for j in await _claim(runtime, "w2", together)] == [second]


async def test_jobs_without_a_key_or_with_other_keys_run_side_by_side(
    runtime: Runtime, together: bool
) -> None:
    plain = [await _enqueue(runtime) for _ in range(3)]
    keyed = [await _enqueue(runtime, f"publish:{n}") for n in range(2)]
    claimed = []
    for worker in ("w1", "w1", "w2", "w3", "w1"):
        claimed += await _claim(runtime, worker, together, limit=1)
    assert sorted(j.id for j in claimed) == sorted(plain + keyed)
    async with runtime.sessions() as session:
        assert await queue.counts_by_status(session) == {"running": 5}


async def test_a_job_whose_lease_keeps_expiring_is_parked_dead_and_can_be_retried(
    runtime: Runtime, together: bool
) -> None:
    poison = await _enqueue(runtime, max_attempts=2)
    for attempt, worker in enumerate(("w1", "w2"), start=1):
        expires = time.monotonic() + 0.1
        [job] = await _claim(runtime, worker, together, lease=0.1)
        assert (job.id, job.attempts) == (poison, attempt)
        # The worker is SIGKILLed or runs out of memory: it never finishes nor fails the job.
        await _sleep_until(expires)
    other = await _enqueue(runtime)
    # The claim that finds the spent job parks it dead, and the slot goes to other work.
    assert [j.id for j in await _claim(runtime, "w3", together, limit=1)] == [other]
    row = await _job(runtime, poison)
    assert row.status == JobStatus.DEAD
    assert row.attempts == 2
    assert (row.locked_by, row.lease_expires_at) == (None, None)
    assert row.finished_at is not None
    assert "lease expired on its last attempt (2 of 2)" in (row.last_error or "")
    assert "worker died or hung" in (row.last_error or "")
    assert await _claim(runtime, "w4", together) == []
    async with runtime.sessions.begin() as session:
        assert [j.id for j in await queue.list_jobs(session, status=JobStatus.DEAD)] == [poison]
        assert await queue.retry_dead(session, poison)
    [job] = await _claim(runtime, "w5", together)
    assert (job.id, job.attempts) == (poison, 1)


async def test_a_renewed_lease_is_not_taken_over_nor_is_its_key(
    runtime: Runtime, together: bool
) -> None:
    first = await _enqueue(runtime, "publish:1")
    lease = 1.0
    expires = time.monotonic() + lease
    await _claim(runtime, "w1", together, lease=lease)
    second = await _enqueue(runtime, "publish:1")
    await asyncio.sleep(lease / 2)
    async with runtime.sessions.begin() as session:
        assert await queue.renew_leases(session, "w1", [first], lease_seconds=30) == {first}
        # Only the holder renews.
        assert await queue.renew_leases(session, "w2", [first], lease_seconds=30) == set()
    await _sleep_until(expires)
    # Past the first lease: still w1's job, and its key still held.
    assert await _claim(runtime, "w2", together) == []
    row = await _job(runtime, first)
    assert (row.status, row.locked_by, row.attempts) == (JobStatus.RUNNING, "w1", 1)
    assert (await _job(runtime, second)).status == JobStatus.QUEUED
    async with runtime.sessions.begin() as session:
        assert await queue.complete(session, first, "w1")


async def test_workers_never_run_two_jobs_with_one_key_at_once(runtime: Runtime) -> None:
    """Two real workers, four slots each, while a producer keeps queuing the same keys."""
    running: Counter[str] = Counter()
    overlaps: list[str] = []
    runs: Counter[str] = Counter()

    async def publish(job: ClaimedJob) -> None:
        key = job.payload["key"]
        running[key] += 1
        if running[key] > 1:
            overlaps.append(key)
        runs[key] += 1
        await asyncio.sleep(0.03)
        running[key] -= 1

    config = WorkerConfig(concurrency=4, poll_interval=0.02)
    workers = [
        Worker(runtime.sessions, {"publish": publish}, config, worker_id=name)
        for name in ("w1", "w2")
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    try:
        for _ in range(40):
            async with runtime.sessions.begin() as session:
                for key in ("publish:1", "publish:2"):
                    await queue.enqueue(session, "publish", {"key": key}, unique_key=key)
            for worker in workers:
                worker.wake()
            await asyncio.sleep(0.02)
        for _ in range(200):
            async with runtime.sessions() as session:
                counts = await queue.counts_by_status(session)
            if set(counts) == {JobStatus.DONE}:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert set(counts) == {JobStatus.DONE}
    assert min(runs.values()) >= 3  # the keys did run again and again
    assert overlaps == []


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
