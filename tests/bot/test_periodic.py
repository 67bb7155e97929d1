"""Periodic jobs are queued once per period however many workers look, on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.periodic import PeriodicJob, enqueue_due
from bot.runtime import Runtime
from bot.worker import Worker, WorkerConfig
from storage.db import create_engine, session_factory
from storage.models import Counter, Job
from storage.queue import ClaimedJob


@pytest.fixture
async def engines(runtime: Runtime) -> AsyncIterator[list[AsyncEngine]]:
    """Four connection pools on one database, as four worker processes would have."""
    made = [create_engine(runtime.settings.database_url) for _ in range(4)]
    yield made
    for engine in made:
        await engine.dispose()


async def test_many_workers_looking_at_once_queue_one_job(
    runtime: Runtime, engines: list[AsyncEngine]
) -> None:
    job = PeriodicJob("tick", every=3600.0)

    async def look(engine: AsyncEngine) -> list[int]:
        async with session_factory(engine).begin() as session:
            return await enqueue_due(session, [job])

    # The first look only starts the count; pretend it was in an earlier period.
    assert await look(engines[0]) == []
    async with runtime.sessions.begin() as session:
        await session.execute(update(Counter).values(value=Counter.value - 1))
    queued = await asyncio.gather(*(look(engine) for engine in engines))
    assert sorted(len(ids) for ids in queued) == [0, 0, 0, 1]
    async with runtime.sessions() as session:
        [row] = (await session.execute(select(Job))).scalars()
    assert (row.kind, row.unique_key) == ("tick", "periodic:tick")
    # The same period again, later: nothing more.
    assert await look(engines[0]) == []


async def test_two_workers_run_each_period_once(
    runtime: Runtime, engines: list[AsyncEngine]
) -> None:
    periods: list[int] = []

    async def tick(job: ClaimedJob) -> None:
        periods.append(int(job.payload["period"]))

    config = WorkerConfig(
        poll_interval=0.05,
        periodic=(PeriodicJob("tick", every=0.5), PeriodicJob("not-mine", every=0.5)),
        periodic_check_seconds=0.05,
    )
    workers = [
        Worker(session_factory(engine), {"tick": tick}, config, worker_id=f"w{n}")
        for n, engine in enumerate(engines[:2])
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    await asyncio.sleep(2.6)
    stop.set()
    await asyncio.gather(*tasks)
    assert 3 <= len(periods) <= 6  # the first period only starts the count
    assert len(periods) == len(set(periods))  # no period twice
    async with runtime.sessions() as session:
        kinds = set((await session.execute(select(Job.kind))).scalars())
    assert kinds == {"tick"}  # a kind no worker handles is not queued
