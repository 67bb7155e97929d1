"""Durable webhook intake with group commit.

Each accepted delivery must be on disk before its 202. One transaction per request caps intake
at the disk's fsync rate, so concurrent deliveries are gathered into one transaction: the
delivery rows (deduplicated by provider and delivery id) and their job rows commit together,
then every waiting request is answered. Bodies are compressed off the event loop, in the same
thread hop as the write (storage/delivery_body.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.counters import reserve_delivery_ids
from storage.delivery_body import encode_body
from storage.models import Job, WebhookDelivery
from storage.queue import NOTIFY_CHANNEL
from storage.types import utcnow

log = logging.getLogger("aac.webhooks.intake")

WEBHOOK_JOB = "webhook_event"
MAX_BATCH = 512
# About SQLite's default 1,000-page checkpoint interval: a delivery and its job take ~1.5 pages.
CHECKPOINT_EVERY_DELIVERIES = 640
# How long shutdown waits for the deliveries already submitted to commit; any still unwritten
# then are answered 503 (the SCM redelivers, and redeliveries are deduplicated).
CLOSE_TIMEOUT_SECONDS = 10.0


class WriterClosed(Exception):
    """The intake is shutting down: this delivery was not stored (the request gets a 503)."""


@dataclass(slots=True)
class Pending:
    provider: str
    delivery_id: str
    event: str
    body: bytes  # as received; compressed when written
    org_id: int | None
    app_id: int | None
    done: asyncio.Future[bool]


class DeliveryWriter:
    """Batches concurrent deliveries into one transaction; ``submit`` returns once committed."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dialect: str,
        *,
        sqlite_path: Path | None = None,
    ) -> None:
        self.sessions = sessions
        self.dialect = dialect
        self._pending: list[Pending] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._writing: list[Pending] = []  # the batch being committed
        # On SQLite the batch is written by one blocking call in a thread: every await on the
        # async driver waits for a turn of an event loop busy with HTTP, and five such turns
        # per batch cost more than the write itself.
        self._sqlite = SqliteBatchWriter(sqlite_path) if sqlite_path is not None else None

    async def submit(
        self,
        provider: str,
        delivery_id: str,
        event: str,
        body: bytes,
        org_id: int | None = None,
        app_id: int | None = None,
    ) -> bool:
        """Persist a delivery and queue its job; False when it was already received.
        WriterClosed once shutdown began and the delivery was not stored."""
        if self._closing:
            raise WriterClosed()
        # The loop is looked up once: on Python 3.11 every lookup is a getpid() system call.
        loop = self._loop
        if loop is None or self._task is None or self._task.done():
            loop = self._loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run())
        item = Pending(provider, delivery_id, event, body, org_id, app_id, loop.create_future())
        self._pending.append(item)
        self._arrived.set()
        return await item.done

    async def close(self, grace: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Refuse new deliveries, commit those already submitted, and answer every waiting
        request: stored, or WriterClosed (503) for what ``grace`` seconds did not fit."""
        self._closing = True
        task = self._task
        if task is not None and not task.done():
            self._arrived.set()  # wakes the loop, which drains the queue and returns
            try:
                await asyncio.wait_for(asyncio.shield(task), grace)
            except TimeoutError:
                log.warning("intake shutdown: deliveries still unwritten are answered 503")
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Nothing may be left waiting: a cancelled batch's outcome is unknown, so its requests
        # are told to retry too (a redelivery of one that did commit is a duplicate).
        for item in [*self._writing, *self._pending]:
            if not item.done.done():
                item.done.set_exception(WriterClosed())
        self._writing, self._pending = [], []
        if self._sqlite is not None:
            self._sqlite.close()

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            # Whatever arrived while the previous batch was being written is the next batch.
            while self._pending:
                batch = self._writing = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._commit(batch)
                self._writing = []
            if self._closing:
                return

    async def _commit(self, batch: list[Pending]) -> None:
        """Write one batch and answer each of its waiting requests."""
        try:
            fresh = {id(item) for item in await self._write(batch)}
        except Exception as exc:
            log.error("could not persist deliveries", exc_info=True)
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            return
        for item in batch:
            if not item.done.done():
                item.done.set_result(id(item) in fresh)

    async def _write(self, batch: list[Pending]) -> list[Pending]:
        """Persist a batch; returns the deliveries that were new (first of each id)."""
        now = utcnow()
        unique: dict[tuple[str, str], Pending] = {}
        for item in batch:
            unique.setdefault((item.provider, item.delivery_id), item)
        if self._sqlite is not None:
            sqlite_writer = self._sqlite
            keys = await asyncio.to_thread(sqlite_writer.write, list(unique.values()), now)
            return [unique[key] for key in keys]
        fresh = list(unique.values())
        bodies = await asyncio.to_thread(lambda: [encode_body(p.body) for p in fresh])
        rows: list[dict[str, Any]] = [
            {
                "provider": p.provider,
                "delivery_id": p.delivery_id,
                "event": p.event,
                "org_id": p.org_id,
                "app_id": p.app_id,
                "body": body,
                "received_at": now,
            }
            for p, body in zip(fresh, bodies, strict=True)
        ]
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        # One cached statement run with many parameter sets: SQLAlchemy batches it into
        # multi-row INSERTs ("insertmanyvalues") without compiling a new statement per batch.
        stmt = (
            dialect_insert(WebhookDelivery)
            .on_conflict_do_nothing(index_elements=["provider", "delivery_id"])
            .returning(WebhookDelivery.id, WebhookDelivery.provider, WebhookDelivery.delivery_id)
        )
        async with self.sessions.begin() as session:
            inserted = (await session.execute(stmt, rows)).all()
            if inserted:
                await session.execute(
                    insert(Job),
                    [
                        {
                            "kind": WEBHOOK_JOB,
                            "payload": {"delivery": row.id, "provider": row.provider},
                            "status": "queued",
                            "attempts": 0,
                            "max_attempts": 5,
                            "run_at": now,
                            "created_at": now,
                        }
                        for row in inserted
                    ],
                )
                if self.dialect == "postgresql":
                    await session.execute(
                        text("SELECT pg_notify(:c, :k)"), {"c": NOTIFY_CHANNEL, "k": WEBHOOK_JOB}
                    )
        return [unique[(row.provider, row.delivery_id)] for row in inserted]


class SqliteBatchWriter:
    """Writes a batch of deliveries and their jobs in one SQLite transaction, synchronously.

    The SQL mirrors storage.models (WebhookDelivery, Job) as the ORM stores them on SQLite:
    naive UTC timestamps, JSON as text. tests/bot/webhooks/test_intake.py reads the rows back
    through the ORM on both engines.

    Web processes sharing the file take turns through an OS file lock (``<db>.intake-lock``)
    before asking SQLite for its write lock: a process waiting on the file lock is woken the
    moment the other commits, whereas SQLite's busy handler sleeps 1, 2, 5, 10... ms between
    retries, which is what a webhook's p99 latency would pay. For the same reason this
    connection never checkpoints the WAL inside a commit (SQLite's default every 1,000
    pages, 10-20 ms each here): a checkpointer thread with its own connection does it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".intake-lock")
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._lock = threading.Lock()
        self._since_checkpoint = 0
        self.checkpointer = WalCheckpointer(path)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn = conn
        return self._conn

    def _file_lock(self) -> int:
        if self._lock_fd is None:
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._lock_fd

    def write(self, items: list[Pending], now: datetime) -> list[tuple[str, str]]:
        """Insert new deliveries and their jobs; returns the (provider, id) keys inserted."""
        stamp = now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        bodies = [encode_body(item.body) for item in items]  # before the lock: no one waits
        with self._lock:
            conn = self._connection()
            lock_fd = self._file_lock()
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                inserted = self._insert(conn, items, bodies, stamp)
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
            self._since_checkpoint += len(items)
            if self._since_checkpoint >= CHECKPOINT_EVERY_DELIVERIES:
                self.checkpointer.request()
                self._since_checkpoint = 0
            return inserted

    def _insert(
        self, conn: sqlite3.Connection, items: list[Pending], bodies: list[bytes], stamp: str
    ) -> list[tuple[str, str]]:
        # Under BEGIN IMMEDIATE no one else writes, so one query finds the redeliveries and the
        # new rows take ids reserved from a counter (never reused after pruning), written
        # with two executemany calls instead of a statement and a fetch per delivery.
        conn.execute("BEGIN IMMEDIATE")
        try:
            known: set[tuple[str, str]] = set()
            for provider in {item.provider for item in items}:
                ids = [item.delivery_id for item in items if item.provider == provider]
                marks = ",".join("?" * len(ids))
                known.update(
                    (provider, str(row[0]))
                    for row in conn.execute(
                        "SELECT delivery_id FROM webhook_deliveries "
                        f"WHERE provider = ? AND delivery_id IN ({marks})",
                        (provider, *ids),
                    )
                )
            fresh = sum((item.provider, item.delivery_id) not in known for item in items)
            next_id = reserve_delivery_ids(conn, fresh)
            deliveries: list[tuple[Any, ...]] = []
            jobs: list[tuple[str, str, str, str]] = []
            inserted: list[tuple[str, str]] = []
            for item, body in zip(items, bodies, strict=True):
                if (item.provider, item.delivery_id) in known:
                    continue
                next_id += 1
                deliveries.append(
                    (
                        next_id,
                        item.provider,
                        item.delivery_id,
                        item.event,
                        item.org_id,
                        item.app_id,
                        body,
                        stamp,
                    )
                )
                payload = json.dumps({"delivery": next_id, "provider": item.provider})
                jobs.append((WEBHOOK_JOB, payload, stamp, stamp))
                inserted.append((item.provider, item.delivery_id))
            conn.executemany(
                "INSERT INTO webhook_deliveries "
                "(id, provider, delivery_id, event, org_id, app_id, body, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                deliveries,
            )
            conn.executemany(
                "INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_at, "
                "created_at) VALUES (?, ?, 'queued', 0, 5, ?, ?)",
                jobs,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return inserted

    def close(self) -> None:
        self.checkpointer.close()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


class WalCheckpointer:
    """Checkpoints the WAL from its own thread and connection, so that no write waits for it.

    PASSIVE mode copies what it can without waiting for, or blocking, any reader or writer;
    a request while one runs is remembered and served right after.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._due = threading.Condition()
        self._requested = 0
        self._served = 0
        self._closing = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        """Ask for a checkpoint soon; returns at once."""
        with self._due:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="aac-wal-checkpoint", daemon=True
                )
                self._thread.start()
            self._requested += 1
            self._due.notify_all()

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until every requested checkpoint has run (shutdown, tests)."""
        with self._due:
            return self._due.wait_for(lambda: self._served >= self._requested, timeout)

    def close(self) -> None:
        with self._due:
            self._closing = True
            self._due.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            while True:
                with self._due:
                    self._due.wait_for(lambda: self._closing or self._served < self._requested)
                    if self._closing:
                        return
                    target = self._requested
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.warning("WAL checkpoint failed; the next request retries", exc_info=True)
                with self._due:
                    self._served = target
                    self._due.notify_all()
        finally:
            conn.close()
