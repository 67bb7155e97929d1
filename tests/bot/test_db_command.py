"""`aac db status` and `aac db upgrade` on a database a newer release migrated ahead of this
code, run as real processes on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from storage.db import create_engine
from storage.migrate import head_revision
from tests.bot.test_cli import aac
from tests.conftest import TEST_KEYS

NEWER = "9999_from_a_newer_release"
KEYS = {"AAC_SECRET_KEYS": TEST_KEYS}  # PostgreSQL refuses to start without them


def _set_revision(url: str, revision: str) -> None:
    async def run() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def ahead(database_url: str) -> Iterator[str]:
    """The database, migrated and then stamped with a revision this code does not ship."""
    assert aac("db", "upgrade", db=database_url, env=KEYS).returncode == 0
    _set_revision(database_url, NEWER)
    try:
        yield database_url
    finally:
        # The PostgreSQL test database is shared by the session: put the revision back.
        _set_revision(database_url, str(head_revision()))


def test_status_says_the_database_is_ahead_and_succeeds(ahead: str) -> None:
    result = aac("db", "status", db=ahead, env=KEYS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        f"database {NEWER}, code {head_revision()}: the database is ahead of this version "
        f"(revision {NEWER}, unknown here; a newer aac-bot migrated it)"
    ]


def test_upgrade_refuses_in_one_line_and_leaves_the_revision(ahead: str) -> None:
    result = aac("db", "upgrade", db=ahead, env=KEYS)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"aac: refusing to upgrade: the database is ahead of this version (revision {NEWER}, "
        "unknown here; a newer aac-bot migrated it); this version never downgrades"
    ]
    status = aac("db", "status", db=ahead, env=KEYS)
    assert f"database {NEWER}," in status.stdout  # not downgraded, not stamped over


def test_status_of_a_current_database_is_unchanged(database_url: str) -> None:
    assert aac("db", "upgrade", db=database_url, env=KEYS).returncode == 0
    result = aac("db", "status", db=database_url, env=KEYS)
    assert result.returncode == 0, result.stderr
    head = head_revision()
    assert result.stdout.strip() == f"database {head}, code {head}: up to date"
