"""A real worker process for the multi-process queue tests.

Usage: python queue_worker_process.py DATABASE_URL WORKER_ID OUT_FILE LEASE_SECONDS
Jobs of kind "record" sleep ``payload["sleep"]`` seconds, then append their id to OUT_FILE.
The process exits when the stop file OUT_FILE + ".stop" appears, or on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.worker import Worker, WorkerConfig, listen_dsn_for
from storage.db import create_engine, session_factory
from storage.queue import Backoff, ClaimedJob


async def main(url: str, worker_id: str, out: Path, lease: float) -> None:
    engine = create_engine(url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    handle = out.open("a", buffering=1)

    async def record(job: ClaimedJob) -> None:
        if job.payload.get("sleep"):
            await asyncio.sleep(float(job.payload["sleep"]))
        handle.write(f"{job.id}\n")
        handle.flush()
        os.fsync(handle.fileno())

    async def watch_stop_file() -> None:
        stop_file = Path(str(out) + ".stop")
        while not stop.is_set():
            if stop_file.exists():
                stop.set()
            await asyncio.sleep(0.1)

    worker = Worker(
        session_factory(engine),
        {"record": record},
        WorkerConfig(
            concurrency=8, lease_seconds=lease, poll_interval=0.2, backoff=Backoff(0.1, 1.0)
        ),
        worker_id=worker_id,
        listen_dsn=listen_dsn_for(url),
    )
    watcher = asyncio.create_task(watch_stop_file())
    print("ready", flush=True)
    await worker.run(stop)
    watcher.cancel()
    handle.close()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])))
