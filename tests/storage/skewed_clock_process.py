"""A process whose host clock runs an hour ahead, trying to take leases another holds.

Usage: python skewed_clock_process.py DATABASE_URL LIVE_SLOT_KEY DEAD_SLOT_KEY
Prints one JSON line: the job ids it claimed and which write slots it took.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime, timedelta, tzinfo

import storage.types
from storage import queue
from storage.db import create_engine, session_factory
from storage.write_slots import WriteSlots

SKEW = 3600.0
_real_time = time.time


class _SkewedDatetime(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _SkewedDatetime:  # type: ignore[override]
        real = datetime.now(tz)
        return cls.fromtimestamp((real + timedelta(seconds=SKEW)).timestamp(), tz)


def skew_the_host_clock() -> None:
    time.time = lambda: _real_time() + SKEW
    storage.types.datetime = _SkewedDatetime  # type: ignore[misc]


async def try_slot(slots: WriteSlots, key: str) -> bool:
    try:
        async with asyncio.timeout(1.5):
            await slots.acquire(key, 0.0)
    except TimeoutError:
        return False
    return True


async def main(url: str, live_key: str, dead_key: str) -> None:
    skew_the_host_clock()
    engine = create_engine(url)
    async with session_factory(engine).begin() as session:
        claimed = await queue.claim(session, "skewed", lease_seconds=30, limit=10)
    slots = WriteSlots(engine, lease_seconds=30)
    taken = {key: await try_slot(slots, key) for key in (live_key, dead_key)}
    print(json.dumps({"claimed": [job.id for job in claimed], "slots": taken}), flush=True)
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
