"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect
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


def create_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
) -> AsyncEngine:
    """An async engine; SQLite connections get WAL, a busy timeout and foreign keys."""
    if database_url.startswith("sqlite"):
        engine = create_async_engine(
            database_url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
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
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; FULL keeps a commit on disk once it returns.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
