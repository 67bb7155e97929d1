"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, ExecutionContext
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 10_000
# A pooled connection that was in use this recently is as good as a ping; pinging on every
# checkout (pool_pre_ping) costs three round trips per transaction on asyncpg.
PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN_AT = "aac_checked_in_at"
# How a SQLite transaction starts: with the write lock, waiting up to the busy timeout for it.
# Emitted right before the transaction's first write, so the transaction never holds a read
# snapshot it would have to upgrade (see _begin_before_first_write).
SQLITE_BEGIN = "BEGIN IMMEDIATE"
_FIRST_WORD = re.compile(r"\s*(\w+)")
# Statements that start no transaction: reads, and those that manage transactions themselves
# or cannot run inside one.
_NO_BEGIN = frozenset(
    [
        "SELECT",
        "EXPLAIN",
        "PRAGMA",
        "BEGIN",
        "COMMIT",
        "END",
        "ROLLBACK",
        "RELEASE",
        "VACUUM",
        "ATTACH",
        "DETACH",
    ]
)


def create_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
) -> AsyncEngine:
    """An async engine; SQLite connections get WAL, a busy timeout, foreign keys, and
    transactions that hold their SAVEPOINTs and DDL (see _begin_before_first_write)."""
    if database_url.startswith("sqlite"):
        engine = create_async_engine(
            database_url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "before_cursor_execute", _begin_before_first_write)
        return engine
    engine = create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size)
    _ping_idle_connections(engine, ping_after_idle)
    return engine


def _ping_idle_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection on checkout only if it sat idle, so a server restart or an
    idle timeout costs a reconnect rather than a failed request."""
    pool = engine.sync_engine.pool
    dialect: Dialect = engine.sync_engine.dialect

    def checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        checked_in = record.info.pop(_CHECKED_IN_AT, None)
        if checked_in is None or time.monotonic() - checked_in < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                # Like pool_pre_ping: the server likely restarted, so drop every older connection.
                raise InvalidatePoolError("idle connection failed its ping") from exc
            raise

    event.listen(pool, "checkin", checkin)
    event.listen(pool, "checkout", checkout)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's legacy mode sends BEGIN before INSERT/UPDATE/DELETE only: a SAVEPOINT opened
    # first started SQLite's transaction itself and its RELEASE committed it, before the rest of
    # the caller's transaction. Without it, _begin_before_first_write opens every transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; FULL keeps a commit on disk once it returns.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_before_first_write(
    conn: Connection,
    cursor: Any,
    statement: str,
    _parameters: Any,
    context: ExecutionContext | None,
    _executemany: bool,
) -> None:
    """Open SQLite's transaction right before the first statement that writes (or a SAVEPOINT).

    Reads before it run on their own, as they did under the driver's legacy mode: a
    transaction that began at its first read would hold that read's snapshot in WAL mode, and
    a write after another connection's commit fails at once with SQLITE_BUSY, which the busy
    timeout does not wait out. BEGIN IMMEDIATE takes the write lock when the transaction
    starts, so reads after it see one snapshot and its writes never fail that way; a read-only
    transaction never takes the lock.
    """
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    if _starts_no_transaction(statement, context):
        return
    if conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        return
    cursor.execute(SQLITE_BEGIN)


def _starts_no_transaction(statement: str, context: ExecutionContext | None) -> bool:
    """True for reads and transaction control; any other statement (INSERT, UPDATE, DELETE,
    SAVEPOINT, DDL, WITH ... UPDATE, or one we cannot tell) writes."""
    first = _FIRST_WORD.match(statement)
    word = first.group(1).upper() if first else ""
    if word == "WITH":
        # A CTE heads both reads and writes; only a compiled SELECT is known to be a read.
        compiled = getattr(context, "compiled", None)
        return bool(getattr(getattr(compiled, "statement", None), "is_select", False))
    return word in _NO_BEGIN


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
