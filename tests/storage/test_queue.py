from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from bot.runtime import Runtime
from bot.worker import PermanentJobError, Worker, WorkerConfig, listen_dsn_for
from providers.base import RateLimited
from storage import queue
from storage.models import Job
from storage.queue import Backoff, ClaimedJob, JobStatus
from storage.types import utcnow


async def _enqueue(runtime: Runtime, n: int, kind: str = "k", **kw: object) -> list[int]:
    async with runtime.sessions.begin() as session:
        return [await queue.enqueue(session, kind, {"n": i}, **kw) for i in range(n)]  # type: ignore[arg-type]


async def _claim(
    runtime: Runtime, worker: str, limit: int = 10, lease: float = 30
) -> list[ClaimedJob]:
    async with runtime.sessions.begin() as session:
        return await queue.claim(session, worker, lease_seconds=lease, limit=limit)


async def _job(runtime: Runtime, job_id: int) -> Job:
    async with runtime.sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def test_enqueue_claim_complete(runtime: Runtime) -> None:
    ids = await _enqueue(runtime, 3)
    claimed = await _claim(runtime, "w1", limit=2)
    assert [j.id for j in claimed] == ids[:2]
    assert all(j.attempts == 1 for j in claimed)
    # Held jobs are not handed out again.
    assert [j.id for j in await _claim(runtime, "w2")] == ids[2:]
    assert await _claim(runtime, "w3") == []
    async with runtime.sessions.begin() as session:
        assert await queue.complete(session, ids[0], "w1")
        # Another worker cannot complete a job it does not hold.
        assert not await queue.complete(session, ids[1], "w2")
    assert (await _job(runtime, ids[0])).status == JobStatus.DONE


async def test_enqueue_commits_with_the_callers_transaction(runtime: Runtime) -> None:
    class Abort(Exception):
        pass

    async def enqueue_then_fail() -> None:
        async with runtime.sessions.begin() as session:
            await queue.enqueue(session, "k", {})
            raise Abort

    with pytest.raises(Abort):
        await enqueue_then_fail()
    assert await _claim(runtime, "w") == []


async def test_enqueue_writes_the_same_row_with_or_without_a_unique_key(runtime: Runtime) -> None:
    # Without a key, SQLite's INSERT goes to the driver directly; with one, through SQLAlchemy.
    when = utcnow() + timedelta(minutes=1)
    async with runtime.sessions.begin() as session:
        plain = await queue.enqueue(session, "k", {"a": [1, "é"]}, run_at=when)
        keyed = await queue.enqueue(session, "k", {"a": [1, "é"]}, run_at=when, unique_key="u")
    columns = "kind, payload, status, attempts, max_attempts, run_at, typeof(run_at)"
    if runtime.engine.dialect.name == "postgresql":
        columns = columns.replace("typeof(run_at)", "pg_typeof(run_at)::text")
    async with runtime.engine.connect() as conn:
        rows = {
            row[0]: tuple(row[1:])
            for row in await conn.exec_driver_sql(f"SELECT id, {columns} FROM jobs")
        }
    assert rows[plain] == rows[keyed]
    assert (await _job(runtime, plain)).run_at == when


async def test_unique_key_coalesces_pending_duplicates(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        first = await queue.enqueue(session, "k", {}, unique_key="cycle:1")
        second = await queue.enqueue(session, "k", {}, unique_key="cycle:1")
    assert first == second
    [job] = await _claim(runtime, "w")
    async with runtime.sessions.begin() as session:
        await queue.complete(session, job.id, "w")
        # Once the first is done, the same key queues new work.
        third = await queue.enqueue(session, "k", {}, unique_key="cycle:1")
    assert third != first


async def test_future_jobs_wait_for_run_at(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        await queue.enqueue(session, "k", {}, run_at=utcnow() + timedelta(hours=1))
    assert await _claim(runtime, "w") == []


async def test_expired_lease_is_reclaimed_by_another_worker(runtime: Runtime) -> None:
    [job_id] = await _enqueue(runtime, 1)
    [held] = await _claim(runtime, "dead-worker", lease=30)
    assert await _claim(runtime, "w2") == []
    async with runtime.sessions.begin() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    [again] = await _claim(runtime, "w2")
    assert again.id == held.id
    assert again.attempts == 2
    async with runtime.sessions.begin() as session:
        # The old holder lost its lease and cannot complete; the new one can.
        assert not await queue.complete(session, job_id, "dead-worker")
        assert await queue.complete(session, job_id, "w2")


async def test_complete_and_claim_records_held_jobs_and_claims_others(runtime: Runtime) -> None:
    ids = await _enqueue(runtime, 5)
    first = await _claim(runtime, "w", limit=2)
    [other] = await _claim(runtime, "other", limit=1)
    async with runtime.engine.connect() as conn:
        held, claimed = await queue.complete_and_claim(
            conn, "w", [j.id for j in first] + [other.id], lease_seconds=30, limit=5
        )
        await conn.commit()
    # The other worker's job is not this worker's to finish.
    assert held == {first[0].id, first[1].id}
    assert [j.id for j in claimed] == ids[3:]
    assert all(j.attempts == 1 and j.payload == {"n": j.id - ids[0]} for j in claimed)
    async with runtime.sessions() as session:
        assert await queue.counts_by_status(session) == {"done": 2, "running": 3}


async def test_complete_and_claim_does_not_hand_out_a_job_it_finishes(runtime: Runtime) -> None:
    [job_id] = await _enqueue(runtime, 1)
    await _claim(runtime, "w")
    # The lease ran out, but nobody took the job over: finishing it still counts.
    async with runtime.sessions.begin() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    async with runtime.engine.connect() as conn:
        held, claimed = await queue.complete_and_claim(
            conn, "w", [job_id], lease_seconds=30, limit=5
        )
        await conn.commit()
    assert held == {job_id}
    assert claimed == []
    assert (await _job(runtime, job_id)).status == JobStatus.DONE


async def test_complete_and_claim_takes_only_the_kinds_asked_for(runtime: Runtime) -> None:
    await _enqueue(runtime, 2, kind="a")
    wanted = await _enqueue(runtime, 2, kind="b")
    async with runtime.engine.connect() as conn:
        _held, claimed = await queue.complete_and_claim(
            conn, "w", [], lease_seconds=30, limit=5, kinds=["b"]
        )
        await conn.commit()
    assert [j.id for j in claimed] == wanted


async def test_complete_and_claim_refuses_a_callers_transaction_on_postgresql(
    runtime: Runtime,
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL runs it as one self-committing statement")
    async with runtime.engine.begin() as conn:
        await conn.execute(select(1))
        with pytest.raises(ValueError, match="commits on its own"):
            await queue.complete_and_claim(conn, "w", [], lease_seconds=30, limit=1)


@pytest.mark.parametrize("together", [False, True], ids=["claim", "complete_and_claim"])
async def test_claim_takes_expired_leases_first_and_never_more_than_the_limit(
    runtime: Runtime, together: bool
) -> None:
    first, *queued = await _enqueue(runtime, 4)
    await _claim(runtime, "dead-worker", limit=1)
    async with runtime.sessions.begin() as session:
        await session.execute(
            update(Job).where(Job.id == first).values(lease_expires_at=utcnow() - timedelta(1))
        )
    async with runtime.engine.connect() as conn:
        if together:
            _held, claimed = await queue.complete_and_claim(
                conn, "w", [], lease_seconds=30, limit=2
            )
        else:
            claimed = await queue.claim(conn, "w", lease_seconds=30, limit=2)
        await conn.commit()
    assert [j.id for j in claimed] == [first, queued[0]]
    assert [j.attempts for j in claimed] == [2, 1]


async def test_failures_back_off_and_end_dead_then_retry(runtime: Runtime) -> None:
    [job_id] = await _enqueue(runtime, 1, max_attempts=3)
    delays = []
    for attempt in range(1, 4):
        async with runtime.sessions.begin() as session:
            await session.execute(update(Job).where(Job.id == job_id).values(run_at=utcnow()))
        [job] = await _claim(runtime, "w")
        assert job.attempts == attempt
        before = utcnow()
        async with runtime.sessions.begin() as session:
            status = await queue.fail(
                session, job, "w", f"boom {attempt}", backoff=Backoff(10, 1000)
            )
        row = await _job(runtime, job_id)
        if attempt < 3:
            assert status == JobStatus.QUEUED
            delays.append((row.run_at - before).total_seconds())
        else:
            assert status == JobStatus.DEAD
            assert row.last_error == "boom 3"
    # Full jitter in [ceiling/2, ceiling]: attempt 1 -> 5..10 s, attempt 2 -> 10..20 s.
    assert 4.9 <= delays[0] <= 10.1
    assert 9.9 <= delays[1] <= 20.1
    async with runtime.sessions() as session:
        dead = await queue.list_jobs(session, status=JobStatus.DEAD)
    assert [j.id for j in dead] == [job_id]
    async with runtime.sessions.begin() as session:
        assert await queue.retry_dead(session, job_id)
        assert not await queue.retry_dead(session, job_id)
    [job] = await _claim(runtime, "w")
    assert job.id == job_id
    assert job.attempts == 1


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base=2, cap=60)
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (10, 60)]:
        for _ in range(50):
            assert ceiling / 2 <= backoff.delay(attempt) <= ceiling


async def _run_worker(runtime: Runtime, handlers: dict, until: int, **config: object) -> Worker:  # type: ignore[type-arg]
    worker = Worker(
        runtime.sessions,
        handlers,
        WorkerConfig(poll_interval=0.05, backoff=Backoff(0.01, 0.05), **config),  # type: ignore[arg-type]
        worker_id="test-worker",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(400):
        if worker.processed >= until:
            break
        await asyncio.sleep(0.025)
    stop.set()
    await task
    return worker


async def test_worker_runs_handlers_once_each(runtime: Runtime) -> None:
    ids = await _enqueue(runtime, 30, kind="count")
    seen: list[int] = []

    async def count(job: ClaimedJob) -> None:
        seen.append(job.id)

    worker = await _run_worker(runtime, {"count": count}, until=30)
    assert worker.processed == 30
    assert sorted(seen) == ids
    async with runtime.sessions() as session:
        assert await queue.counts_by_status(session) == {"done": 30}


async def test_worker_finishes_a_batch_and_claims_the_next_in_one_transaction(
    runtime: Runtime,
) -> None:
    await _enqueue(runtime, 40, kind="quick")
    checkouts = 0

    def count(*_args: object) -> None:
        nonlocal checkouts
        checkouts += 1

    async def quick(job: ClaimedJob) -> None:
        return None

    pool = runtime.engine.sync_engine.pool
    event.listen(pool, "checkout", count)
    try:
        worker = await _run_worker(runtime, {"quick": quick}, until=40, concurrency=4)
    finally:
        event.remove(pool, "checkout", count)
    assert worker.processed == 40
    # Ten batches of four, each finished with the claim of the next, plus a few idle polls;
    # a separate claim and completion per batch would take twenty.
    assert checkouts <= 15


async def test_listening_worker_records_a_lone_completion_without_waiting_to_poll(
    runtime: Runtime,
) -> None:
    listen_dsn = listen_dsn_for(runtime.settings.database_url)
    if listen_dsn is None:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    [job_id] = await _enqueue(runtime, 1, kind="quick")

    async def quick(job: ClaimedJob) -> None:
        return None

    worker = Worker(
        runtime.sessions,
        {"quick": quick},
        WorkerConfig(poll_interval=30),
        worker_id="w",
        listen_dsn=listen_dsn,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        # No backlog and no NOTIFY: the completion lingers briefly, not a whole poll interval.
        for _ in range(100):
            if (await _job(runtime, job_id)).status == JobStatus.DONE:
                break
            await asyncio.sleep(0.02)
        assert (await _job(runtime, job_id)).status == JobStatus.DONE
        assert worker.processed == 1
    finally:
        stop.set()
        await task


async def test_worker_retries_then_parks_dead_and_permanent_errors_skip_retries(
    runtime: Runtime,
) -> None:
    async with runtime.sessions.begin() as session:
        flaky = await queue.enqueue(session, "flaky", {}, max_attempts=5)
        broken = await queue.enqueue(session, "broken", {}, max_attempts=3)
        bad = await queue.enqueue(session, "bad", {}, max_attempts=5)
        unknown = await queue.enqueue(session, "nobody-handles-this", {}, max_attempts=5)
    calls = {"flaky": 0, "broken": 0, "bad": 0}

    async def flaky_handler(job: ClaimedJob) -> None:
        calls["flaky"] += 1
        if job.attempts < 3:
            raise RuntimeError("transient")

    async def broken_handler(job: ClaimedJob) -> None:
        calls["broken"] += 1
        raise RuntimeError("always")

    async def bad_handler(job: ClaimedJob) -> None:
        calls["bad"] += 1
        raise PermanentJobError("payload is wrong")

    handlers = {"flaky": flaky_handler, "broken": broken_handler, "bad": bad_handler}
    worker = Worker(
        runtime.sessions,
        handlers,
        WorkerConfig(poll_interval=0.02, backoff=Backoff(0.01, 0.02)),
        worker_id="w",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(300):
        async with runtime.sessions() as session:
            counts = await queue.counts_by_status(session)
        if counts.get("dead", 0) == 3 and counts.get("done", 0) == 1:
            break
        await asyncio.sleep(0.03)
    stop.set()
    await task
    assert calls == {"flaky": 3, "broken": 3, "bad": 1}
    assert (await _job(runtime, flaky)).status == JobStatus.DONE
    for job_id in (broken, bad, unknown):
        assert (await _job(runtime, job_id)).status == JobStatus.DEAD
    assert "no handler" in ((await _job(runtime, unknown)).last_error or "")


async def test_rate_limited_job_is_rescheduled_without_spending_an_attempt(
    runtime: Runtime,
) -> None:
    [job_id] = await _enqueue(runtime, 1, kind="limited")
    reset = utcnow() + timedelta(minutes=5)

    async def limited(job: ClaimedJob) -> None:
        raise RateLimited("secondary rate limit", retry_at=reset)

    worker = Worker(runtime.sessions, {"limited": limited}, WorkerConfig(poll_interval=0.02))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(100):
        if (await _job(runtime, job_id)).status == JobStatus.QUEUED and (
            await _job(runtime, job_id)
        ).last_error:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    row = await _job(runtime, job_id)
    assert row.status == JobStatus.QUEUED
    assert row.attempts == 0
    assert abs((row.run_at - reset).total_seconds()) < 1


async def test_shutdown_releases_jobs_that_do_not_finish(runtime: Runtime) -> None:
    [job_id] = await _enqueue(runtime, 1, kind="slow")
    started = asyncio.Event()

    async def slow(job: ClaimedJob) -> None:
        started.set()
        await asyncio.sleep(30)

    worker = Worker(
        runtime.sessions, {"slow": slow}, WorkerConfig(poll_interval=0.02, shutdown_grace=0.2)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    row = await _job(runtime, job_id)
    assert row.status == JobStatus.QUEUED
    assert row.locked_by is None
    assert row.attempts == 0  # released, not failed
    async with runtime.sessions() as session:
        assert (await session.execute(select(Job.id))).scalars().all() == [job_id]


async def test_a_job_whose_lease_was_lost_stops_before_its_next_side_effect(
    runtime: Runtime,
) -> None:
    """Another worker took the job over (its lease ran out while this one was stalled): the
    next renewal finds it gone, and the handler is stopped before it writes again."""
    [job_id] = await _enqueue(runtime, 1, kind="two-steps")
    effects: list[str] = []
    started = asyncio.Event()

    async def two_steps(job: ClaimedJob) -> None:
        effects.append("first")
        started.set()
        await asyncio.sleep(3)
        effects.append("second")  # must not happen: the job is another worker's now

    worker = Worker(
        runtime.sessions,
        {"two-steps": two_steps},
        WorkerConfig(poll_interval=0.05, lease_seconds=1.0),
        worker_id="stalled",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 10)
    async with runtime.sessions.begin() as session:
        await session.execute(update(Job).where(Job.id == job_id).values(locked_by="successor"))
    for _ in range(100):
        if not worker._running:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert effects == ["first"]
    row = await _job(runtime, job_id)
    assert (row.status, row.locked_by) == (JobStatus.RUNNING, "successor")  # left to it
