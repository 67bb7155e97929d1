"""Group-committed intake on both engines: rows readable through the ORM, jobs claimable,
duplicates (even inside one batch) stored once."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import stat
import threading
from pathlib import Path

from sqlalchemy import select

from bot.runtime import Runtime, build_runtime
from bot.webhooks.intake import WEBHOOK_JOB, DeliveryWriter, Pending, SqliteBatchWriter
from config.settings import load_settings
from storage import queue
from storage.delivery_body import decode_body
from storage.migrate import upgrade
from storage.models import WebhookDelivery
from storage.types import utcnow
from tests.conftest import TEST_KEYS


async def test_concurrent_deliveries_commit_once_each(runtime: Runtime) -> None:
    writer = DeliveryWriter(
        runtime.sessions, runtime.engine.dialect.name, sqlite_path=runtime.settings.sqlite_path
    )
    body = json.dumps({"action": "opened", "n": "x" * 2000}).encode()
    ids = [f"d-{n}" for n in range(60)]
    try:
        # Every id twice, concurrently: the second of each pair may share the first's batch.
        results = await asyncio.gather(
            *(writer.submit("github", i, "pull_request", body) for i in [*ids, *ids])
        )
    finally:
        await writer.close()
    assert sorted(results).count(True) == 60
    assert sorted(results).count(False) == 60
    async with runtime.sessions() as session:
        rows = list((await session.execute(select(WebhookDelivery))).scalars())
    assert sorted(r.delivery_id for r in rows) == sorted(ids)
    for row in rows:
        assert json.loads(decode_body(row.body)) == json.loads(body)
        assert abs((utcnow() - row.received_at).total_seconds()) < 60
    async with runtime.sessions.begin() as session:
        jobs = await queue.claim(session, "w", lease_seconds=30, limit=500)
    assert len(jobs) == 60
    assert {j.kind for j in jobs} == {WEBHOOK_JOB}
    assert sorted(j.payload["delivery"] for j in jobs) == sorted(r.id for r in rows)


async def test_redelivery_in_a_later_batch_is_a_duplicate(runtime: Runtime) -> None:
    writer = DeliveryWriter(
        runtime.sessions, runtime.engine.dialect.name, sqlite_path=runtime.settings.sqlite_path
    )
    try:
        assert await writer.submit("github", "same", "ping", b"{}")
        assert not await writer.submit("github", "same", "ping", b"{}")
        assert await writer.submit("gitlab", "same", "push", b"{}")  # another provider's id space
    finally:
        await writer.close()


def _items(prefix: str, count: int, body: bytes) -> list[Pending]:
    # Called from async tests: a Pending carries a future, which the writer never touches.
    loop = asyncio.get_running_loop()
    return [
        Pending("github", f"{prefix}-{n}", "push", body, None, None, loop.create_future())
        for n in range(count)
    ]


async def test_writers_in_several_processes_take_turns(tmp_path: Path) -> None:
    """Two writers (two web processes) on one file: every row lands once, under a 0600 lock."""
    db = await _migrated_sqlite(tmp_path)
    body = json.dumps({"action": "opened", "pad": "y" * 3000}).encode()
    writers = [SqliteBatchWriter(db), SqliteBatchWriter(db)]
    errors: list[BaseException] = []
    batches = {p: [_items(f"{p}{b}", 25, body) for b in range(20)] for p in "ab"}

    def run(writer: SqliteBatchWriter, prefix: str) -> None:
        try:
            for items in batches[prefix]:
                assert len(writer.write(items, utcnow())) == 25
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(w, p)) for w, p in zip(writers, "ab", strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.close()
    assert errors == []
    with sqlite3.connect(db) as conn:
        deliveries = conn.execute("SELECT count(DISTINCT delivery_id) FROM webhook_deliveries")
        assert deliveries.fetchone()[0] == 1000
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1000
    assert stat.S_IMODE(os.stat(writers[0].lock_path).st_mode) == 0o600


async def test_the_wal_is_checkpointed_outside_commits(tmp_path: Path) -> None:
    """Commits never checkpoint (that would hold the intake lock); a checkpointer thread does,
    so the WAL stays bounded however long a storm lasts."""
    db = await _migrated_sqlite(tmp_path)
    writer = SqliteBatchWriter(db)
    rng = random.Random(7)
    written = 0
    for batch in range(40):
        body = bytes(rng.getrandbits(8) for _ in range(4096))  # incompressible: ~1 page each
        writer.write(_items(f"b{batch}", 100, body), utcnow())
        written += 100
        assert writer.checkpointer.settle()  # as a gap between bursts would allow
    wal_bytes = db.with_name(db.name + "-wal").stat().st_size  # measured before the last close
    writer.close()
    pages_written = written * 2  # at least a body page and a job row's share per delivery
    assert wal_bytes < pages_written * 4096 / 2


async def _migrated_sqlite(tmp_path: Path) -> Path:
    db = tmp_path / "intake.db"
    settings = load_settings(
        {"AAC_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "AAC_SECRET_KEYS": TEST_KEYS}
    )
    runtime = build_runtime(settings)
    await upgrade(runtime.engine)
    await runtime.close()
    return db
