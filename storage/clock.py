"""The database's clock, for leases compared across processes and hosts.

Host clocks drift and can be wrong by minutes; a lease written by one host's clock and
checked against another's lets two holders in. Every lease is written and checked by the
database's own clock instead, so no host time is ever compared with a stored lease time.

PostgreSQL: ``statement_timestamp()`` (``now()`` would be the start of a possibly long
transaction). SQLite: its own ``'now'`` (the OS clock read by the SQLite library, with
millisecond precision), written in the layout SQLAlchemy stores datetimes in, so stored
values compare correctly as text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Float,
    cast,
    func,
    literal,
    literal_column,
    type_coerce,
)

# SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff'; SQLite's %f gives
# 'SS.SSS', so three zeros complete the microseconds.
_SQLITE_LAYOUT = "%Y-%m-%d %H:%M:%f"
_UNIX_EPOCH_JULIAN_DAY = 2440587.5
_TIMESTAMPTZ = DateTime(timezone=True)


def db_now(dialect: str, plus_seconds: ColumnElement[Any] | None = None) -> ColumnElement[Any]:
    """The database's current time as a timestamp, ``plus_seconds`` (an expression) later."""
    if dialect == "postgresql":
        now = func.statement_timestamp(type_=_TIMESTAMPTZ)
        if plus_seconds is None:
            return now
        later = now + cast(plus_seconds, Float) * literal_column("interval '1 second'")
        return type_coerce(later, _TIMESTAMPTZ)
    if plus_seconds is None:
        return func.strftime(_SQLITE_LAYOUT, "now").concat("000")
    modifier = literal("+").concat(cast(plus_seconds, Float)).concat(" seconds")
    return func.strftime(_SQLITE_LAYOUT, "now", modifier).concat("000")


def db_epoch(dialect: str) -> ColumnElement[float]:
    """The database's current time in seconds since the Unix epoch."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", func.statement_timestamp()), Float)
    return cast((func.julianday("now") - _UNIX_EPOCH_JULIAN_DAY) * 86400.0, Float)
