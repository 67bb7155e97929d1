"""The embedded default's SQLite connections: WAL (readers beside the one writer), a busy
timeout (a second writer waits instead of failing), durable commits, foreign keys."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from bot.runtime import Runtime, build_runtime
from config.settings import load_settings
from storage.db import SQLITE_BUSY_TIMEOUT_MS
from tests.conftest import TEST_KEYS


def _runtime(tmp_path: Path) -> Runtime:
    url = f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    return build_runtime(load_settings({"AAC_DATABASE_URL": url, "AAC_SECRET_KEYS": TEST_KEYS}))


async def test_every_connection_is_configured(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    try:
        # Two connections at once, so the pool opens (and configures) more than one.
        async with runtime.engine.connect() as first, runtime.engine.connect() as second:
            for conn in (first, second):
                pragma = {
                    name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
                    for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
                }
                assert pragma == {
                    "journal_mode": "wal",
                    "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
                    "synchronous": 2,  # FULL
                    "foreign_keys": 1,
                }
        assert SQLITE_BUSY_TIMEOUT_MS >= 5000
    finally:
        await runtime.close()


async def test_readers_run_beside_a_writer_and_a_second_writer_waits(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    try:
        async with runtime.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        # Another process holds the write lock for a moment.
        other = sqlite3.connect(tmp_path / "aac.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (2)")
        try:
            async with runtime.engine.connect() as conn:
                # WAL: reading does not wait for the writer, and sees the committed state.
                assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1

            async def write() -> float:
                started = time.monotonic()
                async with runtime.engine.begin() as conn:
                    await conn.execute(text("INSERT INTO t VALUES (3)"))
                return time.monotonic() - started

            writing = asyncio.create_task(write())
            await asyncio.sleep(0.5)
            assert not writing.done()  # waiting for the lock, not failed with "locked"
            other.execute("COMMIT")
            waited = await asyncio.wait_for(writing, 10)
            assert waited >= 0.4
        finally:
            other.close()
        async with runtime.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 3
    finally:
        await runtime.close()
