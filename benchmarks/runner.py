"""Runner dispatch benchmark: 200 trivial jobs through 4 `aac runner` processes.

    .venv/bin/python benchmarks/runner.py [--jobs 200] [--runners 4] [--rate 8]
                                          [--database-url postgresql+asyncpg://...]

Starts `aac serve` (web + worker) on SQLite (or the given PostgreSQL database, which must be
empty), registers 4 nodes, and queues trivial `run` jobs (`echo ok`) at ``--rate`` jobs per
second against a file:// mirror. The dispatch overhead of a job is the time from its queuing
to its command's start as the bot records it (the node's long-poll, the claim, the credential,
a fresh work directory and a git checkout of the exact commit). Reports p50/p99 of that and
of its two halves (queued -> assigned, assigned -> command start). Target on 2 cores:
p50 < 100 ms, p99 < 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The project, not this folder (its queue.py would shadow the standard library).
sys.path[0] = str(ROOT)

from benchmarks.webhooks import free_port, wait_port  # noqa: E402
from bot import cycles, runner_jobs  # noqa: E402
from config.repo_config import parse_repo_config  # noqa: E402
from config.settings import load_settings  # noqa: E402
from providers.context import CiContext  # noqa: E402
from storage import orgs, runners  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import RunnerJob  # noqa: E402
from storage.vault import generate_key_entry  # noqa: E402

PYTHON = sys.executable
AAC = [PYTHON, "-m", "bot"]
REPOSITORY = "bench/trivial"
CONFIG = "suites:\n  - name: bench\n    run:\n      command: echo ok\n      results: none/*.xml\n"


def make_mirror(root: Path) -> str:
    path = root / REPOSITORY
    path.mkdir(parents=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(root),
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b",
    }
    (path / ".aac.yml").write_text(CONFIG)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


async def _registered(sessions: Any, org_id: int, count: int) -> None:
    """Wait until every node has registered (and so is about to poll)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        async with sessions() as session:
            if len(await runners.list_runners(session, org_id)) >= count:
                await asyncio.sleep(1)  # their first long-poll
                return
        await asyncio.sleep(0.2)
    raise SystemExit(f"the {count} runners did not register within 120 s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="aac-bench-runner-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{work}/aac.db"
    env = {
        **os.environ,
        "AAC_DATABASE_URL": database_url,
        "AAC_SECRET_KEYS": generate_key_entry("k1"),
        "AAC_LOG_LEVEL": "WARNING",
    }
    settings = load_settings(env)
    engine = create_engine(settings.database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    sha = make_mirror(work / "mirror")
    async with sessions.begin() as session:
        org = await orgs.create_org(session, "bench")
        org.settings = {"runners": {"clone_url": f"file://{work}/mirror/{{repository}}"}}
        registration = await runners.create_registration(session, org)
        org_id = org.id
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []
    log = (work / "processes.log").open("wb")
    try:
        processes.append(
            subprocess.Popen([*AAC, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
        )
        wait_port(port)
        node_env = {"PATH": os.environ["PATH"], "AAC_RUNNER_TOKEN": registration}
        for n in range(args.runners):
            processes.append(
                subprocess.Popen(
                    [
                        *AAC,
                        "runner",
                        "--server",
                        f"http://127.0.0.1:{port}",
                        "--name",
                        f"bench-{n}",
                        "--work-dir",
                        str(work / f"node-{n}"),
                    ],
                    env=node_env,
                    stdout=log,
                    stderr=log,
                )
            )
        await _registered(sessions, org_id, args.runners)
        [suite] = parse_repo_config(CONFIG).suites
        started = time.monotonic()
        for i in range(args.jobs):
            async with sessions.begin() as session:
                ctx = CiContext(
                    source="bench",
                    repository=REPOSITORY,
                    sha=sha,
                    suite="bench",
                    pipeline_id=str(i),
                )
                cycle, _ = await cycles.create_cycle(session, org_id, ctx)
                await runner_jobs.queue_runner_jobs(session, cycle, suite)
            await asyncio.sleep(max(0.0, started + (i + 1) / args.rate - time.monotonic()))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            async with sessions() as session:
                rows = list(
                    (
                        await session.execute(
                            RunnerJob.__table__.select().where(RunnerJob.org_id == org_id)
                        )
                    ).all()
                )
            finished = [r for r in rows if r.finished_at is not None]
            if len(finished) == args.jobs:
                break
            await asyncio.sleep(0.5)
        wall = time.monotonic() - started
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        await engine.dispose()
    done = [r for r in rows if r.command_started_at is not None]
    dispatch = [(r.command_started_at - r.queued_at).total_seconds() * 1000 for r in done]
    claim = [(r.assigned_at - r.queued_at).total_seconds() * 1000 for r in done]
    setup = [(r.command_started_at - r.assigned_at).total_seconds() * 1000 for r in done]
    states = {s: sum(1 for r in rows if r.state == s) for s in {r.state for r in rows}}
    engine_name = "PostgreSQL" if "postgresql" in database_url else "SQLite"
    print(
        f"{engine_name}: {len(done)}/{args.jobs} jobs started through {args.runners} runners "
        f"in {wall:.1f} s at {args.rate}/s offered (states {states}); {os.cpu_count()} CPUs"
    )
    for label, values in (
        ("queued -> command start", dispatch),
        ("  queued -> assigned", claim),
        ("  assigned -> command start (credential, checkout)", setup),
    ):
        if values:
            print(
                f"{label}: p50 {percentile(values, 50):.0f} ms, p99 {percentile(values, 99):.0f}"
                f" ms, mean {statistics.mean(values):.0f} ms"
            )
    print(f"(work directory {work})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--rate", type=float, default=8.0, help="jobs queued per second")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default SQLite)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
