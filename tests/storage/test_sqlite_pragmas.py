"""The embedded default's SQLite connections: WAL (readers beside the one writer), a busy
timeout (a second writer waits instead of failing), durable commits, foreign keys,
and transactions that begin at their first write (see storage/db.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
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


@pytest.fixture
async def with_table(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime whose database holds one empty table ``t (n INTEGER)``."""
    runtime = _runtime(tmp_path)
    async with runtime.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield runtime
    await runtime.close()


async def _count(runtime: Runtime) -> int:
    async with runtime.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM t"))).scalar_one())


async def test_readers_run_beside_a_writer_and_a_second_writer_waits(
    with_table: Runtime, tmp_path: Path
) -> None:
    runtime = with_table
    async with runtime.engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    # Another process holds the write lock for a moment.
    other = sqlite3.connect(tmp_path / "aac.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (2)")
    try:
        # WAL: reading does not wait for the writer, and sees the committed state.
        assert await _count(runtime) == 1

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
    assert await _count(runtime) == 3


async def test_a_transaction_that_read_before_another_commit_can_still_write(
    with_table: Runtime,
) -> None:
    """Reads before a transaction's first write hold no snapshot: had the transaction begun at
    its read, its write after another connection's commit would fail at once with
    SQLITE_BUSY ("database is locked"), which no busy timeout waits out."""
    runtime = with_table
    async with runtime.engine.connect() as reader:
        assert (await reader.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
        async with runtime.engine.begin() as other:
            await other.execute(text("INSERT INTO t VALUES (1)"))
        await reader.execute(text("INSERT INTO t VALUES (2)"))
        # After its first write the transaction sees one state: the other's row and its own.
        assert (await reader.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2
        await reader.commit()
    assert await _count(runtime) == 2


async def test_a_reading_transaction_leaves_the_write_lock_free(
    with_table: Runtime, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "aac.db", isolation_level=None, timeout=0)
    try:
        async with with_table.engine.begin() as reader:
            await reader.execute(text("SELECT count(*) FROM t"))
            # Another process writes without waiting while the read-only transaction is open.
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO t VALUES (1)")
            other.execute("COMMIT")
    finally:
        other.close()
    assert await _count(with_table) == 1
