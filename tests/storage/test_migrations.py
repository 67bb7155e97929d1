from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.runtime import Runtime
from storage import queue
from storage.migrate import alembic_config, current_revision, head_revision
from storage.models import Base


async def test_migrations_build_exactly_the_models(runtime: Runtime) -> None:
    assert await current_revision(runtime.engine) == head_revision()
    async with runtime.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == []


async def test_0002_keeps_pending_jobs_and_their_coalescing(runtime: Runtime) -> None:
    """Down to 0001 with jobs queued, back up: nothing lost, keyed jobs still coalesce, and only
    keyed jobs are in the pending-key index."""
    config = alembic_config(runtime.engine.url.render_as_string(hide_password=False))

    async def move(step: Callable[[Config, str], None], revision: str) -> None:
        def run(connection: Connection) -> None:
            config.attributes["connection"] = connection
            step(config, revision)

        async with runtime.engine.begin() as conn:
            await conn.run_sync(run)

    await move(command.downgrade, "0001")
    async with runtime.sessions.begin() as session:
        keyed = await queue.enqueue(session, "publish", {"n": 1}, unique_key="cycle-1")
        await queue.enqueue(session, "publish", {"n": 2})
    await move(command.upgrade, "head")
    assert await current_revision(runtime.engine) == head_revision()
    async with runtime.sessions.begin() as session:
        assert await queue.enqueue(session, "publish", {"n": 3}, unique_key="cycle-1") == keyed
        assert (await queue.counts_by_status(session)) == {"queued": 2}
    async with runtime.engine.connect() as conn:
        if runtime.engine.dialect.name == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE name = 'uq_jobs_pending_unique_key'"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_jobs_pending_unique_key'"
        definition = (await conn.execute(text(query))).scalar_one()
    assert "unique_key IS NOT NULL" in definition
