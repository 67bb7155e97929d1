"""Benchmark: end-to-end job queue throughput (enqueue + claim + complete), printed as jobs/s.

Run as `.venv/bin/python benchmarks/queue.py [--jobs N] [--pg-url ADMIN_URL]`.

Each scenario runs on a freshly emptied, migrated database (a scratch SQLite file in a temp
dir; a scratch PostgreSQL database created here and dropped at the end) with separate OS
processes, all started and connected before the clock starts:

- one producer process enqueueing with `storage.queue.enqueue`, ONE JOB PER TRANSACTION by
  default (as the webhook endpoint does), from `--producer-tasks` concurrent asyncio tasks
  (concurrent webhook requests); `--batch K` puts K jobs in each transaction instead;
- W worker processes, each the real `bot.worker.Worker` with a no-op handler (LISTEN/NOTIFY
  wake-ups on PostgreSQL, polling on SQLite).

Every child runs on the event loop the service's own processes use (uvloop, as `aac serve`
and `aac worker` do).

The clock runs from the producer's first enqueue until `counts_by_status` (polled every 50 ms)
shows all N jobs done, so jobs/s includes the enqueue cost. A scenario still running after
`--timeout` seconds stops there and reports the rate of the jobs done so far.
CPU ms/job adds the producer's and workers' own CPU time and, on PostgreSQL, the server
backends' (from /proc); "2-core cap" is 2000 / that figure: the rate two otherwise idle cores
could sustain, a load-independent view on a shared machine.
Targets (issue, 2-core machine): >= 300 jobs/s on SQLite with one worker, >= 800 jobs/s on
PostgreSQL with 4 workers.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder is sys.path[0] and this file would shadow the stdlib `queue`
# module that aiosqlite and SQLAlchemy import; put the repository root there instead.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Coroutine  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

DEFAULT_PG_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_SQLITE_JOBS = 3000
DEFAULT_PG_JOBS = 5000
DEFAULT_TIMEOUT = 40.0
POLL_SECONDS = 0.05
CORES = 2
JOB_KIND = "bench.noop"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    workers: int
    jobs: int
    target: float | None  # jobs/s from the issue; None where the issue sets none


@dataclass(frozen=True, slots=True)
class Outcome:
    scenario: Scenario
    seconds: float  # first enqueue -> all done (or -> timeout)
    enqueue_seconds: float  # first enqueue -> last enqueue committed
    enqueued: int
    done: int  # jobs done when the clock stopped
    final_done: int  # jobs done once every process has stopped
    processed: int  # the workers' own counters: must equal final_done (exactly once)
    producer_cpu: float
    worker_cpu: float
    server_cpu: float | None  # PostgreSQL backends serving the producer and the workers

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def partial(self) -> bool:
        return self.done < self.scenario.jobs

    @property
    def cpu_split(self) -> tuple[float, float, float]:
        """CPU ms per job: producer (per enqueued job), workers and server (per finished job)."""
        producer = 1000 * self.producer_cpu / max(1, self.enqueued)
        workers = 1000 * self.worker_cpu / max(1, self.final_done)
        server = 1000 * (self.server_cpu or 0.0) / max(1, self.final_done)
        return producer, workers, server

    @property
    def cpu_ms_per_job(self) -> float:
        return sum(self.cpu_split)

    @property
    def verdict(self) -> str:
        if self.processed != self.final_done:
            return "FAIL (worker counters != done rows)"
        suffix = " (timed out)" if self.partial else ""
        if self.scenario.target is None:
            return "-" + suffix
        ok = self.rate >= self.scenario.target and not self.partial
        return ("PASS" if ok else "MISS") + suffix


# --- child roles, each in its own process -------------------------------------------------


async def worker_main(url: str, worker_id: str, concurrency: int, poll_interval: float) -> None:
    """A real Worker with a no-op handler; says "ready", runs until SIGTERM, reports counts."""
    from sqlalchemy import text

    from bot.worker import Worker, WorkerConfig, listen_dsn_for
    from storage.db import create_engine, session_factory
    from storage.queue import ClaimedJob

    async def noop(_job: ClaimedJob) -> None:
        return None

    engine = create_engine(url)
    async with engine.connect() as conn:  # connect before the clock starts
        await conn.execute(text("SELECT 1"))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = Worker(
        session_factory(engine),
        {JOB_KIND: noop},
        WorkerConfig(concurrency=concurrency, lease_seconds=60.0, poll_interval=poll_interval),
        worker_id=worker_id,
        listen_dsn=listen_dsn_for(url),
    )
    cpu = time.process_time()
    run = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.2)  # let it open its LISTEN connection
    _say({"ready": True})
    await run
    cpu = time.process_time() - cpu
    await engine.dispose()
    _say({"processed": worker.processed, "cpu": cpu})


async def producer_main(url: str, jobs: int, batch: int, tasks: int) -> None:
    """Enqueue ``jobs`` jobs, ``batch`` per transaction, from ``tasks`` concurrent tasks.

    Protocol on stdin: "go" starts, "stop" ends early, "quit" (or EOF) disposes and exits.
    """
    from sqlalchemy import text

    from storage import queue
    from storage.db import create_engine, session_factory

    engine = create_engine(url)
    sessions = session_factory(engine)
    pids: list[int] = []

    async def warm() -> None:
        async with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                pids.append(int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
            else:
                await conn.execute(text("SELECT 1"))
            await asyncio.sleep(0.1)  # held, so each task gets its own connection now

    await asyncio.gather(*(warm() for _ in range(tasks)))
    lines: asyncio.Queue[str] = asyncio.Queue()

    async def read_stdin() -> None:
        while True:
            word = (await asyncio.to_thread(sys.stdin.readline)).strip() or "quit"
            await lines.put(word)
            if word == "quit":  # never leave a thread blocked on stdin at exit
                return

    reader = asyncio.create_task(read_stdin())
    _say({"ready": True, "pids": pids})
    await lines.get()  # "go"
    stopping = False
    next_index = 0

    async def produce() -> None:
        nonlocal next_index
        while next_index < jobs and not stopping:
            start, next_index = next_index, min(jobs, next_index + batch)
            async with sessions.begin() as session:
                for i in range(start, next_index):
                    await queue.enqueue(session, JOB_KIND, {"n": i})

    async def watch_stop() -> None:
        nonlocal stopping
        await lines.get()
        stopping = True

    cpu = time.process_time()
    started = time.time()
    _say({"started": started})
    watcher = asyncio.create_task(watch_stop())
    await asyncio.gather(*(produce() for _ in range(tasks)))
    finished = time.time()
    cpu = time.process_time() - cpu
    _say({"finished": finished, "enqueued": next_index, "cpu": cpu})
    if not watcher.done():
        await watcher  # wait for "stop"/"quit", so the server CPU can be read first
    if lines.empty():
        await lines.get()  # "quit"
    reader.cancel()
    await engine.dispose()


def _say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


# --- orchestration ------------------------------------------------------------------------


class Child:
    """A child process of this script speaking one JSON object per stdout line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *role_args: str) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--role",
            *role_args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        return cls(proc)

    async def read(self, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                raise RuntimeError("child process exited early")
            if line.startswith(b"{"):
                return dict(json.loads(line))

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        if not self.proc.stdin.is_closing():
            self.proc.stdin.write(f"{word}\n".encode())
            if word == "quit":
                self.proc.stdin.close()

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


class Observer:
    """This process's view of the database: job counts and the server backends' CPU time."""

    def __init__(self, url: str) -> None:
        from storage.db import create_engine, session_factory

        self.engine = create_engine(url)
        self.sessions = session_factory(self.engine)
        self.postgres = self.engine.dialect.name == "postgresql"

    async def counts(self) -> dict[str, int]:
        from storage import queue

        async with self.sessions() as session:
            return await queue.counts_by_status(session)

    async def backend_cpu(self) -> dict[int, float]:
        """CPU seconds per server backend of this database, except the observer's own."""
        if not self.postgres:
            return {}
        from sqlalchemy import text

        async with self.sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            pids = [int(pid) for pid in rows.scalars()]
        return {pid: cpu for pid in pids if (cpu := _process_cpu(pid)) is not None}

    async def wait_until_done(self, jobs: int, deadline: float) -> tuple[float, int]:
        """Poll counts_by_status until every job is done or the deadline passes."""
        from storage.queue import JobStatus

        while True:
            counts = await self.counts()
            done = counts.get(JobStatus.DONE, 0)
            now = time.time()
            if done >= jobs or counts.get(JobStatus.DEAD, 0) or now >= deadline:
                return now, done
            await asyncio.sleep(POLL_SECONDS)

    async def reset(self) -> None:
        from sqlalchemy import text

        async with self.engine.begin() as conn:
            if self.postgres:
                await conn.execute(text("TRUNCATE jobs RESTART IDENTITY"))
            else:
                await conn.execute(text("DELETE FROM jobs"))
        if self.postgres:
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE jobs"))

    async def close(self) -> None:
        await self.engine.dispose()


def _process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a local process, from /proc (None if unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_scenario(scenario: Scenario, url: str, args: argparse.Namespace) -> Outcome:
    """One measurement: start workers and producer, time until every job is done."""
    observer = Observer(url)
    await observer.reset()
    children: list[Child] = []
    try:
        workers = [
            await Child.start("worker", url, f"bench-w{i}", str(args.concurrency), str(args.poll))
            for i in range(scenario.workers)
        ]
        children.extend(workers)
        producer = await Child.start(
            "producer", url, str(scenario.jobs), str(args.batch), str(args.producer_tasks)
        )
        children.append(producer)
        for worker in workers:
            await worker.read()
        producer_pids = set((await producer.read())["pids"])
        cpu_before = await observer.backend_cpu()
        producer.send("go")
        started = float((await producer.read())["started"])
        end, done = await observer.wait_until_done(scenario.jobs, started + args.timeout)
        producer.send("stop")
        produced = await producer.read()
        cpu_after = await observer.backend_cpu()
        producer.send("quit")
        for worker in workers:
            worker.proc.send_signal(signal.SIGTERM)
        reports = [await worker.read() for worker in workers]
        for child in children:
            await asyncio.wait_for(child.proc.wait(), 30)
        counts = await observer.counts()
    finally:
        for child in children:
            await child.close()
        await observer.close()
    server_cpu = sum(cpu - cpu_before.get(pid, 0.0) for pid, cpu in cpu_after.items())
    return Outcome(
        scenario,
        seconds=end - started,
        enqueue_seconds=float(produced["finished"]) - started,
        enqueued=int(produced["enqueued"]),
        done=done,
        final_done=counts.get("done", 0),
        processed=sum(int(r["processed"]) for r in reports),
        producer_cpu=float(produced["cpu"]),
        worker_cpu=sum(float(r["cpu"]) for r in reports),
        server_cpu=server_cpu if observer.postgres and producer_pids else None,
    )


async def _admin(admin_url: str, sql: str) -> None:
    from sqlalchemy import text

    from storage.db import create_engine

    engine = create_engine(admin_url)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))
    await engine.dispose()


async def _migrate(url: str) -> None:
    from storage.db import create_engine
    from storage.migrate import upgrade

    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()


async def run_all(args: argparse.Namespace) -> list[Outcome]:
    outcomes: list[Outcome] = []

    async def measure(scenario: Scenario, url: str) -> None:
        print(f"running {scenario.name} ({scenario.jobs} jobs) ...", flush=True)
        outcomes.append(await run_scenario(scenario, url, args))

    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="aac-bench-queue-") as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            await _migrate(url)
            jobs = args.jobs or DEFAULT_SQLITE_JOBS
            await measure(Scenario("sqlite, 1 worker", 1, jobs, 300), url)
    if not args.no_pg:
        name = f"aac_bench_queue_{uuid.uuid4().hex[:8]}"
        await _admin(args.pg_url, f'CREATE DATABASE "{name}"')
        url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            await _migrate(url)
            jobs = args.jobs or DEFAULT_PG_JOBS
            await measure(Scenario("postgresql, 1 worker proc", 1, jobs, None), url)
            await measure(Scenario("postgresql, 4 worker procs", 4, jobs, 800), url)
        finally:
            await _admin(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return outcomes


def print_table(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print(
        f"\nproducer: 1 process, {args.producer_tasks} concurrent tasks, {args.batch} job(s) "
        f"per transaction; workers: concurrency {args.concurrency}, no-op handler"
    )
    header = (
        f"{'scenario':<27} {'jobs':>9} {'seconds':>8} {'jobs/s':>7} {'enqueue/s':>9} "
        f"{'CPU ms/job (prod+work+db)':>26} {'2-core cap':>10} {'target':>6}  result"
    )
    print(header)
    print("-" * len(header))
    for o in outcomes:
        jobs = f"{o.done}/{o.scenario.jobs}" if o.partial else str(o.done)
        enqueue_rate = o.enqueued / o.enqueue_seconds if o.enqueue_seconds > 0 else 0.0
        cpu = o.cpu_ms_per_job
        split = "{:.1f}+{:.1f}+{:.1f}".format(*o.cpu_split)
        cap = f"{1000 * CORES / cpu:.0f}" if cpu > 0 else "-"
        target = f"{o.scenario.target:.0f}" if o.scenario.target else "-"
        print(
            f"{o.scenario.name:<27} {jobs:>9} {o.seconds:>8.2f} {o.rate:>7.0f} "
            f"{enqueue_rate:>9.0f} {f'{cpu:.1f} = {split}':>26} {cap:>10} {target:>6}  "
            f"{o.verdict}"
        )
    loads = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average after the run: {loads} (on {os.cpu_count()} CPUs)")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, help="jobs per scenario (default 3000, PG 5000)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--batch", type=int, default=1, help="jobs per enqueue transaction")
    parser.add_argument("--producer-tasks", type=int, default=4, help="concurrent enqueuers")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs in flight per worker")
    parser.add_argument("--poll", type=float, default=0.5, help="worker poll interval, seconds")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds per scenario before reporting the rate of the jobs done so far",
    )
    return parser.parse_args(argv)


def run_as_service(main: Coroutine[Any, Any, None]) -> None:
    """Run a child role on the event loop `aac serve` and `aac worker` use (uvloop)."""
    from bot.runtime import service_loop_factory

    with asyncio.Runner(loop_factory=service_loop_factory()) as runner:
        runner.run(main)


def main(argv: list[str]) -> int:
    if argv[:2] == ["--role", "worker"]:
        url, worker_id, concurrency, poll = argv[2:6]
        run_as_service(worker_main(url, worker_id, int(concurrency), float(poll)))
        return 0
    if argv[:2] == ["--role", "producer"]:
        url, jobs, batch, tasks = argv[2:6]
        run_as_service(producer_main(url, int(jobs), int(batch), int(tasks)))
        return 0
    args = parse_args(argv)
    outcomes = asyncio.run(run_all(args))
    print_table(outcomes, args)
    return 0 if all(o.verdict in ("PASS", "-") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
