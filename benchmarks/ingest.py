"""Benchmark: the 100k-case result file through the real HTTP API, on SQLite and on PostgreSQL.

Run as `.venv/bin/python benchmarks/ingest.py [--engine sqlite|postgresql|both] [--cases N]`.
Per engine: a fresh database, the app under uvicorn on a free 127.0.0.1 port with its real
in-process worker, the fake GitHub (`tests/fakes/github.py`) with the App installed on the test
organisation and pull request 7 open. Then, timed:

- upload-to-stored: one `POST /api/v1/cycles/{id}/results` of the generated file until its
  response, which the API sends once every result row is committed;
- complete-to-published: `POST .../complete` until the fake GitHub holds the bot's PR comment
  and the completed check run (analysis, verdicts and publishing; no LLM is configured, so
  no model latency is counted).

PostgreSQL comes from `AAC_BENCH_PG_ADMIN_URL` (default: trust auth on 127.0.0.1:5432); a
throwaway database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this directory comes first on sys.path, and its queue.py would shadow the
# standard library's; the repository root takes its place.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

from sqlalchemy import text  # noqa: E402

from benchmarks.harness import fake_github_with_app, running_bot  # noqa: E402
from benchmarks.parse_results import generate  # noqa: E402
from storage.db import create_engine  # noqa: E402
from tests.bot.e2e.conftest import (  # noqa: E402
    REPOSITORY,
    RunningBot,
    install,
    pull_request,
    wait_for,
)
from tests.github_constants import BOT_LOGIN  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "AAC_BENCH_PG_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
SHA = "7" * 40
PR = 7
PUBLISH_TIMEOUT = float(os.environ.get("AAC_BENCH_PUBLISH_TIMEOUT", "900"))


async def _admin(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))
    await engine.dispose()


@asynccontextmanager
async def _database(engine: str, work: Path) -> AsyncIterator[str]:
    """A fresh, empty database URL for one run."""
    if engine == "sqlite":
        yield f"sqlite+aiosqlite:///{work}/aac.db"
        return
    name = f"aac_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _step(what: str) -> None:
    print(f"  .. {what}", file=sys.stderr, flush=True)


async def _measure(bot: RunningBot, path: Path, cases: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {bot.api_key}"}
    _step("installing the App")
    await install(bot)
    _step("opening the pull request")
    await bot.deliver("pull_request", pull_request("opened", PR, SHA))
    await wait_for(
        lambda: any(r.head_sha == SHA for r in bot.github.check_runs.values()), 60, "a check run"
    )
    created = await bot.http.post(
        f"{bot.url}/api/v1/cycles",
        json={"source": "github", "repository": REPOSITORY, "sha": SHA, "pr": PR},
        headers=auth,
    )
    created.raise_for_status()
    cycle = created.json()

    _step("uploading")
    started = time.perf_counter()
    with path.open("rb") as stream:
        uploaded = await bot.http.post(
            cycle["upload_url"],
            content=stream.read(),
            headers={**auth, "X-Filename": path.name, "Content-Type": "application/octet-stream"},
        )
    stored = time.perf_counter() - started
    uploaded.raise_for_status()
    totals = uploaded.json()["totals"]
    if totals["total"] != cases:
        raise SystemExit(f"stored {totals['total']} tests, expected {cases}")

    _step("completing, waiting for publishing")
    started = time.perf_counter()
    (await bot.http.post(cycle["complete_url"], json={}, headers=auth)).raise_for_status()

    async def published() -> bool:
        comment = any(c.user == BOT_LOGIN for c in bot.github.comments.values())
        runs = [r for r in bot.github.check_runs.values() if r.head_sha == SHA]
        if not (comment and runs and all(r.status == "completed" for r in runs)):
            return False
        state = (await bot.http.get(cycle["url"], headers=auth)).json()["published"] or {}
        return all(part.get("succeeded") for part in state.values())

    try:
        await wait_for(published, PUBLISH_TIMEOUT, "the comment and the completed check run")
    except AssertionError:
        state = (await bot.http.get(cycle["url"], headers=auth)).json()
        runs = [(r.name, r.status, r.conclusion) for r in bot.github.check_runs.values()]
        comments = [(c.user, c.body[:80]) for c in bot.github.comments.values()]
        raise SystemExit(
            f"not published: cycle {state}, check runs {runs}, comments {comments}"
        ) from None
    return {"stored_s": stored, "published_s": time.perf_counter() - started, "totals": totals}


async def run(engine: str, path: Path, cases: int, work: Path) -> dict[str, Any]:
    """One engine: fresh database and fake GitHub, upload, complete, wait for publishing."""
    with fake_github_with_app() as (github, private_pem):
        _step(f"{engine}: starting the bot")
        async with _database(engine, work) as url, running_bot(url, github, private_pem) as bot:
            result = await _measure(bot, path, cases)
        if github.validation_errors:
            raise SystemExit(f"GitHub rejected request bodies: {github.validation_errors[:3]}")
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--failures", type=int, default=2_000)
    args = parser.parse_args()
    engines = ("sqlite", "postgresql") if args.engine == "both" else (args.engine,)
    with tempfile.TemporaryDirectory(prefix="aac-ingest-") as tmp:
        work = Path(tmp)
        path = work / "TEST-bench.xml"
        with path.open("wb") as out:
            generate(out, cases=args.cases, failures=args.failures)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {args.cases} cases, {args.failures} failures, {size_mb:.1f} MB")
        print(f"\n{'engine':<12} {'upload-to-stored s':>19} {'complete-to-published s':>24}")
        for engine in engines:
            (work / engine).mkdir()
            row = asyncio.run(run(engine, path, args.cases, work / engine))
            print(f"{engine:<12} {row['stored_s']:>19.2f} {row['published_s']:>24.2f}")
            print(f"{'':<12} totals {row['totals']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
