"""The queue under real worker processes on PostgreSQL: exactly once, and SIGKILL loses nothing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from storage import queue
from storage.db import create_engine, session_factory
from storage.models import Base, Job

WORKER = Path(__file__).with_name("queue_worker_process.py")
pytestmark = pytest.mark.slow


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture
def pg_url(pg_database_url: str) -> Iterator[str]:
    async def truncate() -> None:
        engine = create_engine(pg_database_url)
        async with engine.begin() as conn:
            from sqlalchemy import text

            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    _run(truncate())
    return pg_database_url


def _enqueue(url: str, payloads: list[dict[str, object]]) -> list[int]:
    async def run() -> list[int]:
        engine = create_engine(url)
        async with session_factory(engine).begin() as session:
            ids = [await queue.enqueue(session, "record", p, max_attempts=5) for p in payloads]
        await engine.dispose()
        return ids

    return _run(run())  # type: ignore[return-value]


def _statuses(url: str) -> dict[int, tuple[str, str | None]]:
    async def run() -> dict[int, tuple[str, str | None]]:
        engine = create_engine(url)
        async with session_factory(engine)() as session:
            rows = (await session.execute(select(Job.id, Job.status, Job.locked_by))).all()
        await engine.dispose()
        return {r.id: (r.status, r.locked_by) for r in rows}

    return _run(run())  # type: ignore[return-value]


def _start(url: str, name: str, out: Path, lease: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), url, name, str(out), str(lease)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_four_worker_processes_complete_2000_jobs_exactly_once(pg_url: str, tmp_path: Path) -> None:
    out = tmp_path / "done.txt"
    procs = [_start(pg_url, f"w{i}", out, 30) for i in range(4)]
    try:
        ids = _enqueue(pg_url, [{} for _ in range(2000)])

        def all_done() -> bool:
            return out.exists() and len(out.read_text().split()) >= 2000

        _wait_for(all_done, 120)
    finally:
        Path(str(out) + ".stop").touch()
        for proc in procs:
            proc.wait(30)
    counts = Counter(int(x) for x in out.read_text().split())
    assert sorted(counts) == ids
    assert set(counts.values()) == {1}
    assert {status for status, _ in _statuses(pg_url).values()} == {"done"}


def test_sigkilled_worker_loses_nothing(pg_url: str, tmp_path: Path) -> None:
    out = tmp_path / "done.txt"
    victim = _start(pg_url, "victim", out, 2)
    [job_id] = _enqueue(pg_url, [{"sleep": 3}])
    _wait_for(lambda: _statuses(pg_url)[job_id] == ("running", "victim"), 20)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    rescuer = _start(pg_url, "rescuer", out, 2)
    try:
        _wait_for(lambda: _statuses(pg_url)[job_id][0] == "done", 30)
    finally:
        Path(str(out) + ".stop").touch()
        rescuer.wait(30)
    assert out.read_text().split() == [str(job_id)]
