"""What every ``aac`` command group, the core's and each SCM package's, reports errors with."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:  # the client-only `aac report` install has no database libraries
    from sqlalchemy.ext.asyncio import AsyncEngine

    from config.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A message for the user and an exit code; never a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def say(message: str, stream: TextIO | None = None) -> None:
    """One line for the operator, flushed at once (stdout unless told otherwise)."""
    print(message, file=stream or sys.stdout, flush=True)


class _Migratable(Protocol):
    settings: Settings
    engine: AsyncEngine


async def ensure_migrated(runtime: _Migratable) -> None:
    """Bring a SQLite database to the code's revision; refuse a PostgreSQL one that lags (its
    upgrade is an operator's step, run once for every replica). A database a newer version
    migrated is used as it is: old replicas keep running through a rolling update."""
    from storage.migrate import current_revision, head_revision, schema_state, upgrade

    current, head = await current_revision(runtime.engine), head_revision()
    state = schema_state(current)
    if state == "current":
        return
    if state == "ahead":
        say(
            f"the database is at revision {current}, newer than this code's {head}: "
            "running on, assuming the newer migrations are additive",
            sys.stderr,
        )
        return
    if runtime.settings.is_sqlite:
        say(f"applying database migrations ({current or 'empty'} -> {head}) ...", sys.stderr)
        await upgrade(runtime.engine)
        return
    raise CliError(
        f"the database is at revision {current or 'none'}, the code needs {head}: "
        "run `aac db upgrade` once, then start the service"
    )
