"""Apply and inspect Alembic migrations programmatically (`aac db upgrade`, `/readyz`)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """Alembic configuration pointing at our migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


# How the database's schema relates to this code's migrations.
SchemaState = Literal["current", "ahead", "behind"]


@functools.cache
def _scripts() -> ScriptDirectory:
    # Read once: /readyz asks on every probe, and the shipped migrations never change.
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str | None:
    """The newest migration shipped with this code."""
    return _scripts().get_current_head()


@functools.cache
def _shipped_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def schema_state(database_revision: str | None) -> SchemaState:
    """``current`` at this code's head; ``behind`` when empty or at an older shipped revision
    (migrations to apply); ``ahead`` at a revision this code does not ship, which a newer
    version wrote: the state of old replicas during a rolling update."""
    if database_revision == head_revision():
        return "current"
    if database_revision is None or database_revision in _shipped_revisions():
        return "behind"
    return "ahead"


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database to the newest migration, in one transaction."""
    config = alembic_config(str(engine.url))

    def _upgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_current)
