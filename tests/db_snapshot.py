"""Whole-database views for tests: every row of every table (to show that a rejected command
changed nothing) and every stored value as text or bytes (to search for secrets in clear)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import Base

Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(engine: AsyncEngine) -> Snapshot:
    """Every row of every mapped table, in primary-key order."""
    rows: Snapshot = {}
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in (await conn.execute(query)).all()]
    return rows


async def postgresql_stored_values(engine: AsyncEngine) -> list[tuple[str, str | bytes]]:
    """Every non-null value of every column of every table in the database's schema, found
    through information_schema rather than our models (so a table or column added later is
    covered too): bytea as bytes, everything else cast to text."""
    values: list[tuple[str, str | bytes]] = []
    async with engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
                )
            )
        ).all()
        assert columns, "no columns found: wrong schema?"
        for table, column, data_type in columns:
            expression = f'"{column}"' if data_type == "bytea" else f'"{column}"::text'
            result = await conn.execute(
                text(f'SELECT {expression} FROM "{table}" WHERE "{column}" IS NOT NULL')
            )
            values.extend((f"{table}.{column}", value) for (value,) in result.all())
    return values


def holding(values: list[tuple[str, str | bytes]], needle: str) -> list[str]:
    """The ``table.column`` names whose values contain ``needle``."""
    raw = needle.encode()
    return sorted(
        {
            where
            for where, value in values
            if (raw in value if isinstance(value, bytes) else needle in value)
        }
    )


async def places_holding(engine: AsyncEngine, sqlite_path: Path | None, needle: str) -> list[str]:
    """Where the raw database holds ``needle``: SQLite files (database, WAL, journal, with
    their free pages) byte for byte, or every column of every PostgreSQL table."""
    if sqlite_path is not None:
        return sorted(
            file.name
            for file in sqlite_path.parent.glob(sqlite_path.name + "*")
            if needle.encode() in file.read_bytes()
        )
    return holding(await postgresql_stored_values(engine), needle)
