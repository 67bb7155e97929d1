"""Re-encrypt every stored secret under the keyring's current key, in resumable batches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.secret_fields import ENCRYPTED_FIELDS, EncryptedField
from storage.vault import Vault, VaultError, key_id_of

BATCH = 200


@dataclass(slots=True)
class RotationReport:
    rotated: int = 0
    already_current: int = 0
    # "table.column id N" of values no key in the keyring decrypts: left as they are.
    unreadable: list[str] = field(default_factory=list)


async def rotate_all(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    *,
    progress: Callable[[str], None] | None = None,
) -> RotationReport:
    """Re-encrypt values not under the current key; each batch commits, so a re-run resumes.

    A value no key decrypts is skipped and named in the report, the others are rotated.
    """
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
                    try:
                        rotated = await _rotate_value(session, vault, spec, row)
                    except VaultError:
                        # Sealed by a key that is gone, or damaged: one such value must not
                        # stop every other from moving to the current key.
                        report.unreadable.append(
                            f"{spec.model.__tablename__}.{spec.column} id {row.id}"
                        )
                        continue
                    if rotated:
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


async def _rotate_value(
    session: AsyncSession, vault: Vault, spec: EncryptedField, row: Any
) -> bool:
    """Re-encrypt one value unless it is current; True if it was re-encrypted.

    The write is a compare-and-swap on the ciphertext that was read: a value changed meanwhile
    (say `aac integration set` stored a new token) is read again instead of being overwritten
    with the old value re-encrypted. Row locks alone would not do on SQLite, whose driver only
    begins the transaction at the first write, after the read.
    """
    column = getattr(spec.model, spec.column)
    stored: str | None = getattr(row, spec.column)
    while stored is not None and vault.needs_rotation(stored):
        swapped = await session.execute(
            update(spec.model)
            .where(spec.model.id == row.id, column == stored)
            .values({spec.column: vault.reencrypt(stored, spec.owner(row))})
            .execution_options(synchronize_session=False)
        )
        if swapped.rowcount == 1:  # type: ignore[attr-defined]
            return True
        stored = (
            await session.execute(select(column).where(spec.model.id == row.id))
        ).scalar_one_or_none()
    return False


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
