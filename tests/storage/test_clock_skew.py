"""Leases are on the database's clock: a process whose host clock runs an hour ahead (a real
separate process, its time.time and datetime.now skewed) cannot take a live job lease or
write slot, and still takes ones whose lease really ran out."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from bot.runtime import Runtime
from storage import queue
from storage.write_slots import WriteSlots

SKEWED = Path(__file__).with_name("skewed_clock_process.py")
REPO = Path(__file__).parents[2]


async def test_a_host_clock_running_ahead_cannot_steal_a_live_lease(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        live = await queue.enqueue(session, "k", {})
        dead = await queue.enqueue(session, "k", {})
    async with runtime.sessions.begin() as session:
        [held] = await queue.claim(session, "honest", lease_seconds=30)
    async with runtime.sessions.begin() as session:
        [expired] = await queue.claim(session, "crashed", lease_seconds=0.05)
    assert (held.id, expired.id) == (live, dead)
    await WriteSlots(runtime.engine, lease_seconds=30).acquire("live slot", 0.0)
    await WriteSlots(runtime.engine, lease_seconds=0.05).acquire("dead slot", 0.0)
    await asyncio.sleep(0.2)  # the short leases run out; the long ones have 29 s to go

    url = runtime.settings.database_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SKEWED),
        url,
        "live slot",
        "dead slot",
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={"PYTHONPATH": str(REPO)},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    result = json.loads(out)
    assert result["claimed"] == [dead]
    assert result["slots"] == {"live slot": False, "dead slot": True}
