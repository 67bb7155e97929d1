"""The in-process worker claims freely when intake is quiet and only a trickle during a burst."""

from __future__ import annotations

import asyncio
import contextlib
import time

from bot.runtime import Runtime
from bot.webhooks.pacing import IntakeActivity, IntakeFirstPacer
from bot.worker import Worker, WorkerConfig
from storage import queue
from storage.queue import ClaimedJob


async def test_quiet_intake_gets_every_free_slot_at_once() -> None:
    pacer = IntakeFirstPacer(IntakeActivity(), quiet=0.05, patience=5, burst_claim=1)
    started = time.monotonic()
    assert await pacer(16) == 16
    assert time.monotonic() - started < 0.5


async def _requests_every(activity: IntakeActivity, seconds: float) -> None:
    while True:
        activity.saw_request()  # accepted or rejected alike
        await asyncio.sleep(seconds)


async def _with_requests(activity: IntakeActivity, every: float, pacer: IntakeFirstPacer) -> int:
    """What the pacer grants while requests arrive every ``every`` seconds."""
    feeder = asyncio.create_task(_requests_every(activity, every))
    try:
        await asyncio.sleep(3 * activity.window)  # the rate is measured
        return await pacer(16)
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder


async def test_a_flood_defers_claims_to_a_trickle() -> None:
    activity = IntakeActivity(window=0.05)
    pacer = IntakeFirstPacer(activity, quiet=0.05, patience=0.3, burst_claim=1, busy_rate=50)
    started = time.monotonic()
    assert await _with_requests(activity, 0.005, pacer) == 1  # about 200 requests/s
    assert time.monotonic() - started >= 0.29 + 0.15  # waited out its patience first
    # The flood is over: once it has been quiet for a moment, every slot again.
    assert await pacer(16) == 16


async def test_steady_traffic_below_a_flood_never_holds_the_worker_back() -> None:
    """Requests every 50 ms leave no 0.25 s gap, yet they are no flood: the worker must keep
    pace with them, not fall to one job per patience period and let a backlog grow forever."""
    activity = IntakeActivity(window=0.05)
    pacer = IntakeFirstPacer(activity, quiet=0.25, patience=5.0, burst_claim=1, busy_rate=500)
    started = time.monotonic()
    assert await _with_requests(activity, 0.05, pacer) == 16
    assert time.monotonic() - started < 0.15 + 0.5


async def test_deliveries_being_written_count_as_intake() -> None:
    activity = IntakeActivity(window=0.05)
    for _ in range(200):
        activity.saw_request()
        time.sleep(0.0005)  # a flood of about 1,500 requests/s, then nothing new
    activity.writing = 3  # a slow group commit: three are still waiting on it
    pacer = IntakeFirstPacer(activity, quiet=0.01, patience=0.1, burst_claim=2, busy_rate=500)
    assert await pacer(16) == 2


async def test_worker_claims_no_more_than_the_pacer_allows(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        for n in range(6):
            await queue.enqueue(session, "paced", {"n": n})
    seen: list[int] = []
    handled: list[int] = []

    async def pacer(free: int) -> int:
        seen.append(free)
        return 1 if len(seen) <= 3 else 0

    async def handler(job: ClaimedJob) -> None:
        handled.append(job.id)

    worker = Worker(
        runtime.sessions,
        {"paced": handler},
        WorkerConfig(concurrency=4, poll_interval=0.02),
        pacer=pacer,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(200):
        if len(seen) > 6:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert len(seen) > 3
    assert all(free <= 4 for free in seen)
    assert len(handled) == 3  # one per allowed claim; the rest stay queued
    async with runtime.sessions() as session:
        assert (await queue.counts_by_status(session)).get("queued") == 3
