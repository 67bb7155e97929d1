"""Start-up's migration check: a database migrated ahead of the code (a newer release during a
rolling update) is used as it is, a lagging PostgreSQL one is refused. On both engines."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot.runtime import Runtime
from providers.cli import CliError, ensure_migrated
from storage.migrate import current_revision


async def _set_revision(runtime: Runtime, revision: str) -> None:
    async with runtime.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})


async def test_a_database_ahead_of_the_code_is_used_as_it_is(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    head = await current_revision(runtime.engine)
    assert head is not None
    await _set_revision(runtime, "9999_from_a_newer_release")
    try:
        await ensure_migrated(runtime)
        assert await current_revision(runtime.engine) == "9999_from_a_newer_release"
        assert "newer than this code's" in capsys.readouterr().err
    finally:
        # The PostgreSQL test database is shared by the session: put the revision back.
        await _set_revision(runtime, head)


async def test_a_lagging_postgresql_database_is_refused(runtime: Runtime) -> None:
    if runtime.settings.is_sqlite:
        pytest.skip("SQLite is migrated on start-up")
    head = await current_revision(runtime.engine)
    assert head is not None
    await _set_revision(runtime, "0002")
    try:
        with pytest.raises(CliError, match="run `aac db upgrade` once"):
            await ensure_migrated(runtime)
    finally:
        await _set_revision(runtime, head)
