from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.runtime import Runtime
from storage import queue
from storage.migrate import alembic_config, current_revision, head_revision
from storage.models import Base, GithubApp, Installation


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


async def test_0005_keys_installations_by_app_and_keeps_them(runtime: Runtime) -> None:
    """Down to 0004 with an installation stored, back up: the row is kept as it was, and a
    second host's App may now hold the same installation id (it could not before)."""
    config = alembic_config(runtime.engine.url.render_as_string(hide_password=False))

    async def move(step: Callable[[Config, str], None], revision: str) -> None:
        def run(connection: Connection) -> None:
            config.attributes["connection"] = connection
            step(config, revision)

        async with runtime.engine.begin() as conn:
            await conn.run_sync(run)

    def app(row_id: int, api_url: str) -> dict[str, object]:
        # Only the columns of 0004: later revisions add columns the model already maps.
        return {
            "id": row_id,
            "app_id": 1,
            "api_url": api_url,
            "private_key_enc": "-",
            "webhook_secret_enc": "-",
        }

    await move(command.downgrade, "0004")
    async with runtime.sessions.begin() as session:
        await session.execute(
            insert(GithubApp),
            [app(1, "https://api.github.com"), app(2, "https://ghe.example/api/v3")],
        )
        session.add(
            Installation(
                github_app_id=1,
                installation_id=3,
                account_login="acme",
                account_type="Organization",
                repositories=["acme/widgets"],
                permissions={"checks": "write"},
            )
        )
    async with runtime.sessions() as session:
        session.add(
            Installation(
                github_app_id=2,
                installation_id=3,
                account_login="other",
                account_type="Organization",
                repositories=[],
                permissions={},
            )
        )
        with pytest.raises(IntegrityError):
            await session.flush()  # 0004: one installation 3, whichever host

    await move(command.upgrade, "head")
    assert await current_revision(runtime.engine) == head_revision()
    async with runtime.sessions.begin() as session:
        kept = (await session.execute(select(Installation))).scalar_one()
        assert (kept.github_app_id, kept.installation_id, kept.account_login) == (1, 3, "acme")
        assert (kept.repositories, kept.permissions) == (["acme/widgets"], {"checks": "write"})
        session.add(
            Installation(
                github_app_id=2,
                installation_id=3,
                account_login="other",
                account_type="Organization",
                repositories=[],
                permissions={},
            )
        )
    async with runtime.sessions() as session:
        session.add(
            Installation(
                github_app_id=2,
                installation_id=3,
                account_login="again",
                account_type="Organization",
                repositories=[],
                permissions={},
            )
        )
        with pytest.raises(IntegrityError):
            await session.flush()  # still one installation 3 per App
    async with runtime.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == []
