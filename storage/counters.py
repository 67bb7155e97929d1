"""Named counters that only move up: ids that are never handed out twice, and periods that
are acted on once across every process."""

from __future__ import annotations

import sqlite3
from typing import cast

from sqlalchemy import Table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Counter

_T = cast(Table, Counter.__table__)
DELIVERY_IDS = "webhook_deliveries"


async def advance(
    session: AsyncSession, name: str, value: int, *, creating_counts: bool = True
) -> bool:
    """Raise counter ``name`` to ``value`` in the caller's transaction; True if this call
    moved it (it was lower, or absent and ``creating_counts``), False if it was already
    there: of many processes advancing it to the same value, at most one gets True."""
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_T)
    created = await session.execute(
        insert.values(name=name, value=value).on_conflict_do_nothing(index_elements=["name"])
    )
    if created.rowcount == 1:  # type: ignore[attr-defined]
        return creating_counts
    moved = await session.execute(
        update(_T).where(_T.c.name == name, _T.c.value < value).values(value=value)
    )
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def reserve_delivery_ids(conn: sqlite3.Connection, count: int) -> int:
    """Reserve ``count`` new webhook delivery ids on SQLite, inside the caller's write
    transaction; returns the id before the first one (ids are ``first + 1 ... first + count``).

    Never an id handed out before, even after retention pruned the newest rows (max(id) + 1
    would hand those out again); rows inserted some other way are stepped over too.
    """
    row = conn.execute(
        "UPDATE counters SET value = max(value, "
        "(SELECT coalesce(max(id), 0) FROM webhook_deliveries)) + ? WHERE name = ? "
        "RETURNING value",
        (count, DELIVERY_IDS),
    ).fetchone()
    if row is None:  # a database created before the counter was seeded
        row = conn.execute(
            "INSERT INTO counters (name, value) "
            "SELECT ?, coalesce(max(id), 0) + ? FROM webhook_deliveries RETURNING value",
            (DELIVERY_IDS, count),
        ).fetchone()
    return int(row[0]) - count
