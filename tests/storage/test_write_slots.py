"""Write slots shared through the database: two engines on one database stand for two processes."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.runtime import Runtime
from storage.db import create_engine
from storage.models import WriteSlot
from storage.write_slots import LeaseLost, WriteSlots, slot_id

KEY = "('https://api.github.com', 'installation', 77)"


@pytest.fixture
async def other_engine(runtime: Runtime) -> AsyncIterator[AsyncEngine]:
    """A second connection pool on the same database, as another process would have."""
    engine = create_engine(runtime.settings.database_url)
    yield engine
    await engine.dispose()


async def test_writers_in_two_processes_take_turns_a_gap_apart(
    runtime: Runtime, other_engine: AsyncEngine
) -> None:
    gap = 0.1
    spans: list[tuple[float, float]] = []

    async def write(slots: WriteSlots, times: int) -> None:
        for _ in range(times):
            async with slots.hold(KEY, gap):
                started = time.time()
                await asyncio.sleep(0.02)  # the HTTP call
                spans.append((started, time.time()))

    await asyncio.gather(
        write(WriteSlots(runtime.engine), 3),
        write(WriteSlots(other_engine), 3),
        write(WriteSlots(other_engine), 2),
    )
    spans.sort()
    assert len(spans) == 8
    for (_, ended), (next_started, _) in itertools.pairwise(spans):
        assert next_started >= ended + gap  # never overlapping, and the gap kept


async def test_other_installations_do_not_wait(runtime: Runtime, other_engine: AsyncEngine) -> None:
    release = asyncio.Event()
    held = asyncio.Event()

    async def long_write() -> None:
        async with WriteSlots(runtime.engine).hold(KEY, 5.0):
            held.set()
            await release.wait()

    task = asyncio.create_task(long_write())
    await held.wait()
    started = time.monotonic()
    async with WriteSlots(other_engine).hold("another installation", 5.0):
        waited = time.monotonic() - started
    release.set()
    await task
    assert waited < 1.0


async def test_a_crashed_holder_blocks_only_until_its_lease_ends(
    runtime: Runtime, other_engine: AsyncEngine
) -> None:
    crashed = WriteSlots(runtime.engine, lease_seconds=0.4)
    started = time.monotonic()
    abandoned = await crashed.acquire(KEY, 0.0)  # its process dies before releasing
    survivor = WriteSlots(other_engine)
    taken = await survivor.acquire(KEY, 0.0)
    waited = time.monotonic() - started
    assert 0.4 <= waited < 3.0
    # The dead holder's late release must not free the slot the survivor now holds.
    assert await crashed.release(abandoned) is False
    async with other_engine.connect() as conn:
        holder = (
            await conn.execute(select(WriteSlot.holder).where(WriteSlot.slot == slot_id(KEY)))
        ).scalar_one()
    assert holder == taken.holder
    assert await survivor.release(taken) is True


async def test_a_cancelled_write_hands_the_slot_on(
    runtime: Runtime, other_engine: AsyncEngine
) -> None:
    held = asyncio.Event()

    async def write() -> None:
        async with WriteSlots(runtime.engine, lease_seconds=30.0).hold(KEY, 0.0):
            held.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(write())
    await held.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.monotonic()
    async with WriteSlots(other_engine).hold(KEY, 0.0):
        waited = time.monotonic() - started
    assert waited < 5.0  # not the 30 s lease


async def test_rows_carry_a_digest_not_the_key(runtime: Runtime) -> None:
    key = "('https://ghe.example.com/api/v3', 'token', '3f9a0c1d2e4b5a69')"
    async with WriteSlots(runtime.engine).hold(key, 0.0):
        pass
    async with runtime.engine.connect() as conn:
        slots = (await conn.execute(select(WriteSlot.slot))).scalars().all()
    assert slots == [slot_id(key)]
    assert "ghe.example.com" not in slots[0]
    assert "3f9a0c1d2e4b5a69" not in slots[0]


async def test_a_long_write_keeps_its_slot_past_the_lease(
    runtime: Runtime, other_engine: AsyncEngine
) -> None:
    """A live holder renews its lease: a write that queues behind many paced ones for longer
    than the lease is not overtaken by another process."""
    spans: dict[str, tuple[float, float]] = {}
    held = asyncio.Event()

    async def long_write() -> None:
        async with WriteSlots(runtime.engine, lease_seconds=0.3).hold(KEY, 0.0):
            held.set()
            started = time.time()
            await asyncio.sleep(1.0)  # more than three leases
            spans["long"] = (started, time.time())

    async def next_write() -> None:
        await held.wait()
        async with WriteSlots(other_engine, lease_seconds=0.3).hold(KEY, 0.0):
            spans["next"] = (time.time(), time.time())

    await asyncio.gather(long_write(), next_write())
    assert spans["next"][0] >= spans["long"][1]


async def test_cancelling_a_waiting_or_acquiring_writer_never_strands_the_slot(
    runtime: Runtime, other_engine: AsyncEngine
) -> None:
    """Shutdown can cancel a writer at any point of taking the slot, even just after the
    database granted it; the slot must not stay taken until its (long) lease ends."""
    slots = WriteSlots(runtime.engine, lease_seconds=30.0)
    for attempt in range(50):
        task = asyncio.create_task(slots.acquire(KEY, 0.0))
        await asyncio.sleep(0.0004 * attempt)  # cancel at a different point each time
        task.cancel()
        try:
            taken = await task
        except asyncio.CancelledError:
            continue
        await slots.release(taken)  # it won the race against the cancel: an ordinary release
    async with asyncio.timeout(5):
        async with WriteSlots(other_engine).hold(KEY, 0.0):
            pass


async def test_a_write_whose_lease_was_lost_is_not_sent(
    runtime: Runtime, other_engine: AsyncEngine
) -> None:
    """A holder that lost its slot (the lease ran out, another process took it) learns so
    before sending, and the other holder's lease is untouched."""
    slow = WriteSlots(runtime.engine, lease_seconds=0.3)
    sent: list[str] = []
    async with slow.lease(KEY, 0.0) as held:
        await slow.confirm(held)  # live: the write may go
        sent.append("first")
        # The renewer stalls (a long GC pause, a stopped VM): the lease runs out and another
        # process takes the slot.
        async with other_engine.begin() as conn:
            await conn.execute(
                update(WriteSlot)
                .where(WriteSlot.slot == slot_id(KEY))
                .values(holder="another-process:1", held_until=time.time() + 60)
            )
        with pytest.raises(LeaseLost):
            await slow.confirm(held)
    assert sent == ["first"]
    async with other_engine.connect() as conn:
        holder = (
            await conn.execute(select(WriteSlot.holder).where(WriteSlot.slot == slot_id(KEY)))
        ).scalar_one()
    assert holder == "another-process:1"  # releasing the lost slot left the new holder alone
