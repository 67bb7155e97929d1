from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.runtime import Runtime
from storage.migrate import current_revision, head_revision
from storage.models import Base


async def test_migrations_build_exactly_the_models(runtime: Runtime) -> None:
    assert await current_revision(runtime.engine) == head_revision()
    async with runtime.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == []
