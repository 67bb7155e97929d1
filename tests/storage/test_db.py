"""Engine set-up: idle PostgreSQL connections are pinged, busy ones are not."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_idle_connection_killed_by_the_server_is_replaced(pg_database_url: str) -> None:
    engine = create_engine(pg_database_url, pool_size=1, ping_after_idle=0.0)
    admin = create_engine(pg_database_url)
    try:
        pid = await _backend_pid(engine)
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # The ping on checkout notices the dead connection; the caller never sees it.
        assert await _backend_pid(engine) != pid
    finally:
        await engine.dispose()
        await admin.dispose()


async def test_recently_used_connection_is_not_pinged(
    pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(pg_database_url, pool_size=1, ping_after_idle=60.0)
    pings: list[object] = []
    dialect = engine.sync_engine.dialect
    monkeypatch.setattr(dialect, "do_ping", lambda conn: pings.append(conn) or True)
    try:
        pids = {await _backend_pid(engine) for _ in range(5)}
        assert len(pids) == 1
        assert pings == []
    finally:
        await engine.dispose()
