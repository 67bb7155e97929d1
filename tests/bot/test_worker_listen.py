"""The worker's LISTEN connection on real PostgreSQL: losing it, polling, getting it back."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.runtime import Runtime
from bot.worker import Worker, WorkerConfig, listen_dsn_for
from storage import queue
from storage.models import Job
from storage.queue import Backoff, ClaimedJob, JobStatus

# What pg_stat_activity shows for asyncpg's LISTEN connection once add_listener() has run.
LISTEN_QUERY = f'LISTEN "{queue.NOTIFY_CHANNEL}"'
QUICK_RECONNECT = Backoff(base=0.05, cap=0.2)


@pytest.fixture
def listen_dsn(runtime: Runtime) -> str:
    dsn = listen_dsn_for(runtime.settings.database_url)
    if dsn is None:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    return dsn


@pytest.fixture
async def listen_role(runtime: Runtime, listen_dsn: str) -> AsyncIterator[str]:
    """A login role of its own for the LISTEN connection, so a test can refuse its logins."""
    role = f"aac_listen_{uuid.uuid4().hex[:8]}"
    await _admin(runtime, f'CREATE ROLE "{role}" LOGIN')
    yield role
    await _admin(
        runtime,
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'",
    )
    await _admin(runtime, f'DROP ROLE "{role}"')


async def _admin(runtime: Runtime, sql: str) -> None:
    async with runtime.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))


async def _listen_pids(runtime: Runtime) -> set[int]:
    """Backends of this test database idle after the worker's LISTEN, so listening."""
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND state = 'idle' AND query = :listen AND pid <> pg_backend_pid()"
            ),
            {"listen": LISTEN_QUERY},
        )
        return {int(pid) for pid in rows.scalars()}


async def _terminate(runtime: Runtime, pid: int) -> None:
    await _admin(runtime, f"SELECT pg_terminate_backend({pid})")


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.02)


async def _one_listen_pid(runtime: Runtime, *, other_than: int = -1, timeout: float = 5) -> int:
    pids: set[int] = set()

    async def appeared() -> bool:
        nonlocal pids
        pids = await _listen_pids(runtime) - {other_than}
        return bool(pids)

    await _eventually(appeared, timeout, "a LISTEN connection")
    [pid] = pids
    return pid


async def _enqueue_and_wait(runtime: Runtime, timeout: float) -> None:
    """Queue a job as the web app does (its commit NOTIFYs) and wait until a worker ran it."""
    async with runtime.sessions.begin() as session:
        job_id = await queue.enqueue(session, "quick", {})

    async def done() -> bool:
        async with runtime.sessions() as session:
            job = await session.get(Job, job_id)
            return job is not None and job.status == JobStatus.DONE

    await _eventually(done, timeout, f"job {job_id} done")


async def _quick(job: ClaimedJob) -> None:
    return None


def _start(
    runtime: Runtime, config: WorkerConfig, dsn: str
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    worker = Worker(runtime.sessions, {"quick": _quick}, config, worker_id="w", listen_dsn=dsn)
    stop = asyncio.Event()
    return stop, asyncio.create_task(worker.run(stop))


def _logged(caplog: pytest.LogCaptureFixture, level: int, start: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "aac.worker.listen" and r.levelno == level and r.message.startswith(start)
    ]


async def test_worker_listens_again_after_its_listen_backend_is_terminated(
    runtime: Runtime, listen_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aac.worker.listen")
    # Polling is too slow to pass this test: only a NOTIFY can wake the worker in time.
    stop, task = _start(runtime, WorkerConfig(poll_interval=30), listen_dsn)
    try:
        first = await _one_listen_pid(runtime)
        await _terminate(runtime, first)
        await _one_listen_pid(runtime, other_than=first)
        await _enqueue_and_wait(runtime, timeout=3)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert len(_logged(caplog, logging.WARNING, "LISTEN connection lost")) == 1
    assert len(_logged(caplog, logging.INFO, "LISTEN connection restored")) == 1
    # Shutdown closed the connection it reopened.
    assert await _listen_pids(runtime) == set()


async def test_worker_polls_while_listen_logins_are_refused_and_listens_once_they_are_not(
    runtime: Runtime, listen_dsn: str, listen_role: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aac.worker.listen")
    # The server trusts local logins and ignores it; the logs must not show it all the same.
    secret = "not-for-the-logs"
    dsn = (
        make_url(listen_dsn)
        .set(username=listen_role, password=secret)
        .render_as_string(hide_password=False)
    )
    config = WorkerConfig(poll_interval=0.2, listen_backoff=QUICK_RECONNECT)
    stop, task = _start(runtime, config, dsn)
    try:
        first = await _one_listen_pid(runtime)
        # As after a restart that the LISTEN connection's role cannot log in to yet.
        await _admin(runtime, f'ALTER ROLE "{listen_role}" NOLOGIN')
        await _terminate(runtime, first)

        async def refused_twice() -> bool:
            return len(_logged(caplog, logging.DEBUG, "LISTEN reconnect failed")) >= 2

        await _eventually(refused_twice, 5, "two refused reconnects")
        await _enqueue_and_wait(runtime, timeout=3)
        assert await _listen_pids(runtime) == set()  # found by polling, not by a NOTIFY

        await _admin(runtime, f'ALTER ROLE "{listen_role}" LOGIN')
        await _one_listen_pid(runtime, other_than=first)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert len(_logged(caplog, logging.WARNING, "LISTEN")) == 1  # one warning, not one per try
    assert len(_logged(caplog, logging.INFO, "LISTEN connection restored")) == 1
    assert not [r for r in caplog.records if secret in f"{r.getMessage()} {vars(r)}"]


async def test_worker_that_cannot_listen_at_start_keeps_trying(
    runtime: Runtime, listen_dsn: str, listen_role: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aac.worker.listen")
    await _admin(runtime, f'ALTER ROLE "{listen_role}" NOLOGIN')
    dsn = make_url(listen_dsn).set(username=listen_role).render_as_string(hide_password=False)
    config = WorkerConfig(poll_interval=30, listen_backoff=QUICK_RECONNECT)
    stop, task = _start(runtime, config, dsn)
    try:

        async def warned() -> bool:
            return bool(_logged(caplog, logging.WARNING, "LISTEN unavailable"))

        await _eventually(warned, 5, "the LISTEN unavailable warning")
        await _admin(runtime, f'ALTER ROLE "{listen_role}" LOGIN')
        await _one_listen_pid(runtime)
        await _enqueue_and_wait(runtime, timeout=3)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_shutdown_during_a_reconnect_back_off_cancels_it_cleanly(
    runtime: Runtime, listen_dsn: str, listen_role: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aac.worker.listen")
    dsn = make_url(listen_dsn).set(username=listen_role).render_as_string(hide_password=False)
    # The first retry is at least 15 s away, so shutdown finds the reconnect task asleep.
    config = WorkerConfig(poll_interval=0.2, listen_backoff=Backoff(base=30, cap=30))
    stop, task = _start(runtime, config, dsn)

    async def lost() -> bool:
        return bool(_logged(caplog, logging.WARNING, "LISTEN connection lost"))

    try:
        first = await _one_listen_pid(runtime)
        await _admin(runtime, f'ALTER ROLE "{listen_role}" NOLOGIN')
        await _terminate(runtime, first)
        await _eventually(lost, 5, "the LISTEN connection lost warning")
        [reconnect] = [t for t in asyncio.all_tasks() if t.get_name() == "aac-listen-reconnect"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 2)  # raises if anything escaped the worker
    assert reconnect.cancelled()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "aac-listen-reconnect"]
    assert await _listen_pids(runtime) == set()
