"""``/healthz`` answers while the process lives; ``/readyz`` only when the database is reachable
and at the code's migration head or ahead of it (a rolling update), with a JSON reason
otherwise. On both engines."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from bot.app import create_app
from bot.runtime import Runtime, build_runtime
from config.settings import load_settings
from storage.migrate import head_revision
from tests.conftest import TEST_KEYS


async def _get(runtime: Runtime, path: str) -> httpx.Response:
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path)


async def test_ready_when_reachable_and_migrated(runtime: Runtime) -> None:
    ready = await _get(runtime, "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "schema": "current",
        "database_revision": head_revision(),
    }
    assert (await _get(runtime, "/healthz")).json() == {"status": "ok"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime whose database cannot be opened: a SQLite file in a directory that does not
    exist, or a PostgreSQL port nobody listens on (with a password that must not leak)."""
    url = (
        f"sqlite+aiosqlite:///{tmp_path}/no-such-dir/aac.db"
        if request.param == "sqlite"
        else "postgresql+asyncpg://aac:hunter2@127.0.0.1:1/aac"
    )
    runtime = build_runtime(load_settings({"AAC_DATABASE_URL": url, "AAC_SECRET_KEYS": TEST_KEYS}))
    yield runtime
    await runtime.close()


async def test_not_ready_when_the_database_is_unreachable(unreachable: Runtime) -> None:
    ready = await _get(unreachable, "/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/json"
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["reason"].startswith("database unreachable")
    assert "hunter2" not in ready.text
    alive = await _get(unreachable, "/healthz")
    assert alive.status_code == 200
    assert alive.json() == {"status": "ok"}


async def test_not_ready_before_the_first_migration(unmigrated: Runtime) -> None:
    ready = await _get(unmigrated, "/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["reason"] == "migrations pending; run `aac db upgrade`"
    assert (body["schema"], body["database_revision"]) == ("behind", None)
    assert body["code_revision"] == head_revision()
    assert (await _get(unmigrated, "/healthz")).status_code == 200


async def test_not_ready_while_migrations_are_pending(runtime: Runtime) -> None:
    """A database one migration behind the code (as after deploying new code)."""
    async with _database_at(runtime, "0002"):
        ready = await _get(runtime, "/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert (body["status"], body["schema"]) == ("unavailable", "behind")
        assert "aac db upgrade" in body["reason"]
        assert (body["database_revision"], body["code_revision"]) == ("0002", head_revision())
        assert (await _get(runtime, "/healthz")).status_code == 200
    assert (await _get(runtime, "/readyz")).status_code == 200


async def test_ready_when_a_newer_version_migrated_the_database(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """A revision this code does not ship: a newer release migrated the database while this
    replica still serves (a rolling update). Ready, said in the body, warned about once."""
    newer = f"9999_newer_{runtime.engine.dialect.name}"
    caplog.set_level(logging.WARNING, logger="aac.health")
    async with _database_at(runtime, newer):
        probes = [await _get(runtime, "/readyz") for _ in range(3)]
    assert [probe.status_code for probe in probes] == [200, 200, 200]
    assert probes[0].json() == {"status": "ok", "schema": "ahead", "database_revision": newer}
    warnings = [r for r in caplog.records if r.name == "aac.health"]
    assert len(warnings) == 1
    assert "does not ship" in warnings[0].getMessage()
    assert warnings[0].database_revision == newer  # type: ignore[attr-defined]


@asynccontextmanager
async def _database_at(runtime: Runtime, revision: str) -> AsyncIterator[None]:
    """The database's recorded migration set to ``revision`` for the body, then put back (the
    PostgreSQL test database is shared by the session)."""
    async with runtime.engine.begin() as conn:
        (before,) = (await conn.execute(text("SELECT version_num FROM alembic_version"))).one()
        await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    try:
        yield
    finally:
        async with runtime.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": before})


@pytest.fixture
async def unmigrated(tmp_path: Path) -> AsyncIterator[Runtime]:
    """An empty SQLite database (PostgreSQL's test database is migrated once per session)."""
    runtime = build_runtime(
        load_settings(
            {"AAC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/empty.db",
             "AAC_SECRET_KEYS": TEST_KEYS}
        )
    )  # fmt: skip
    yield runtime
    await runtime.close()
