from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.cycles import create_cycle
from bot.runtime import Runtime
from providers.context import CiContext
from storage import queue
from storage.migrate import alembic_config, current_revision, head_revision
from storage.models import (
    ApiKey,
    Base,
    GithubApp,
    Installation,
    Integration,
    TestCycle,
)

Move = Callable[[Callable[[Config, str], None], str], Awaitable[None]]


def mover(runtime: Runtime) -> Move:
    """``move(command.upgrade | command.downgrade, revision)`` on the runtime's database."""
    config = alembic_config(runtime.engine.url.render_as_string(hide_password=False))

    async def move(step: Callable[[Config, str], None], revision: str) -> None:
        def run(connection: Connection) -> None:
            config.attributes["connection"] = connection
            step(config, revision)

        async with runtime.engine.begin() as conn:
            await conn.run_sync(run)

    return move


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
    move = mover(runtime)

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
    move = mover(runtime)

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


async def test_0008_gives_existing_api_keys_both_scopes(runtime: Runtime) -> None:
    """Keys created before scopes existed keep doing everything they did."""
    move = mover(runtime)
    await move(command.downgrade, "0005")
    async with runtime.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO organizations (slug, name, settings, created_at) "
                "VALUES ('acme', 'acme', '{}', '2026-01-01 00:00:00')"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO api_keys (org_id, prefix, key_hash, name, created_at) "
                "SELECT id, 'aac_old', 'h', 'ci', '2026-01-01 00:00:00' FROM organizations"
            )
        )
    await move(command.upgrade, "head")
    async with runtime.sessions() as session:
        scopes = (await session.execute(select(ApiKey.scopes))).scalar_one()
    assert scopes == "report,read"


async def test_0006_keys_cycles_by_scm_and_host_and_carries_rows_over(runtime: Runtime) -> None:
    """Down to 0005 with cycles stored, back up: each gets the host its SCM credentials
    point at (the App of its installation, its organisation's App or integration, else the
    public service), runners keep none, and a GitLab cycle may now share a GitHub cycle's
    repository, commit and suite (it could not before)."""
    move = mover(runtime)

    now = datetime.now(UTC)
    counts = dict.fromkeys(("total", "passed", "failed", "errored", "skipped", "flaky"), 0)
    cycles_0005 = sa.table(
        "test_cycles",
        *(
            sa.column(name)
            for name in (
                "id",
                "org_id",
                "status",
                "source",
                "repository",
                "sha",
                "pipeline_id",
                "run_attempt",
                "suite",
                "trigger",
                "duration",
                "created_at",
                "updated_at",
                *counts,
            )
        ),
        sa.column("context_extra", sa.JSON),
        sa.column("files", sa.JSON),
        sa.column("published", sa.JSON),
    )

    def cycle(cycle_id: str, org_id: int, source: str, **extra: object) -> dict[str, object]:
        return {
            "id": cycle_id, "org_id": org_id, "status": "done", "source": source,
            "repository": "acme/widgets", "sha": cycle_id.ljust(40, "0"), "pipeline_id": "",
            "run_attempt": 1, "suite": "tests", "trigger": "ci", "duration": 0.0, "created_at": now,
            "updated_at": now, "context_extra": extra, "files": [], "published": {}, **counts,
        }  # fmt: skip

    await move(command.downgrade, "0005")
    # Organisations as 0005 knew them (the model has columns added since).
    orgs_0005 = sa.table(
        "organizations",
        sa.column("id"),
        sa.column("slug"),
        sa.column("name"),
        sa.column("settings", sa.JSON),
        sa.column("created_at"),
    )
    async with runtime.sessions.begin() as session:
        acme_id, solo_id = (
            await session.execute(
                sa.insert(orgs_0005).returning(orgs_0005.c.id),
                [
                    {"slug": slug, "name": slug, "settings": {}, "created_at": now}
                    for slug in ("acme", "solo")
                ],
            )
        ).scalars()
        # Only the columns of 0005: later revisions add columns the model already maps.
        await session.execute(
            insert(GithubApp),
            [
                {
                    "id": 1,
                    "app_id": 1,
                    "api_url": "https://ghe.example.com/api/v3",
                    "private_key_enc": "-",
                    "webhook_secret_enc": "-",
                }
            ],
        )
        await session.flush()
        session.add_all(
            [
                Installation(
                    github_app_id=1,
                    installation_id=9,
                    account_login="acme",
                    account_type="Organization",
                    org_id=acme_id,
                    repositories=[],
                    permissions={},
                ),
                Integration(org_id=acme_id, provider="gitlab", base_url="https://git.acme.io"),
            ]
        )
        await session.flush()
    async with runtime.engine.begin() as conn:
        await conn.execute(
            cycles_0005.insert(),
            [
                cycle("gh-installation", acme_id, "github", installation_id=9),
                cycle("gh-org-app", acme_id, "github"),
                cycle("gh-public", solo_id, "github"),
                cycle("gl-self-managed", acme_id, "gitlab"),
                cycle("gl-public", solo_id, "gitlab"),
                cycle("runner", solo_id, "jenkins"),
            ],
        )
    await move(command.upgrade, "head")
    async with runtime.sessions() as session:
        hosts = dict((await session.execute(select(TestCycle.id, TestCycle.host))).all())
    assert hosts == {
        "gh-installation": "ghe.example.com",
        "gh-org-app": "ghe.example.com",
        "gh-public": "api.github.com",
        "gl-self-managed": "git.acme.io",
        "gl-public": "gitlab.com",
        "runner": "",
    }
    # Same organisation, repository, commit and suite, another SCM: a cycle of its own.
    async with runtime.sessions.begin() as session:
        ctx = CiContext(
            source="gitlab", host="ghe.example.com", repository="acme/widgets", sha="a" * 40
        )
        _, created = await create_cycle(session, acme_id, ctx)
        assert created
    async with runtime.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == []
