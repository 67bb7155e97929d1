"""Watching the bot's database sessions from outside, during an e2e test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text

from storage.db import create_engine
from tests.bot.e2e.conftest import RunningBot

# Longer than any transaction of the bot's own spends between two statements.
IDLE_FOR = "0.5 seconds"


@contextlib.asynccontextmanager
async def idle_in_transaction(bot: RunningBot) -> AsyncIterator[list[str]]:
    """The queries of sessions seen idle in a transaction for over ``IDLE_FOR``, sampled from a
    connection of its own until the block ends. Nothing on SQLite, which has no such view."""
    if bot.runtime.engine.dialect.name != "postgresql":
        yield []
        return
    engine = create_engine(bot.runtime.settings.database_url)
    seen: list[str] = []

    async def watch() -> None:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            while True:
                rows = await conn.execute(
                    text(
                        "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state = 'idle in transaction'"
                        f" AND now() - state_change > interval '{IDLE_FOR}'"
                    )
                )
                seen.extend(rows.scalars())
                await asyncio.sleep(0.05)

    watching = asyncio.create_task(watch())
    try:
        yield seen
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        await engine.dispose()
