"""Re-encrypt every stored secret under the keyring's current key, in resumable batches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.secret_fields import ENCRYPTED_FIELDS
from storage.vault import Vault, key_id_of

BATCH = 200


@dataclass(slots=True)
class RotationReport:
    rotated: int = 0
    already_current: int = 0


async def rotate_all(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    *,
    progress: Callable[[str], None] | None = None,
) -> RotationReport:
    """Re-encrypt values not under the current key; each batch commits, so a re-run resumes."""
    report = RotationReport()
    for spec in ENCRYPTED_FIELDS:
        column = getattr(spec.model, spec.column)
        last_id = 0
        while True:
            async with sessions.begin() as session:
                rows = list(
                    (
                        await session.execute(
                            select(spec.model)
                            .where(spec.model.id > last_id, column.is_not(None))
                            .order_by(spec.model.id)
                            .limit(BATCH)
                        )
                    ).scalars()
                )
                for row in rows:
                    stored = getattr(row, spec.column)
                    if vault.needs_rotation(stored):
                        setattr(row, spec.column, vault.reencrypt(stored, spec.owner(row)))
                        report.rotated += 1
                    else:
                        report.already_current += 1
            if not rows:
                break
            last_id = rows[-1].id
            if progress:
                done = report.rotated + report.already_current
                progress(f"{spec.model.__tablename__}.{spec.column}: {done} values checked")
    return report


async def key_ids_in_use(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    """Key ids that stored values still name (an old key can go once it is absent here)."""
    used: set[str] = set()
    async with sessions() as session:
        for spec in ENCRYPTED_FIELDS:
            column = getattr(spec.model, spec.column)
            for (stored,) in (
                await session.execute(select(column).where(column.is_not(None)))
            ).all():
                used.add(key_id_of(stored) or "?")
    return used
