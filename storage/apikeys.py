"""Organisation API keys for CI: shown once, stored as a SHA-256 hash with a visible prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ApiKey, Organization
from storage.types import utcnow

KEY_PREFIX = "aac_"
# "report": create cycles, upload results, complete them; "read": list cycles, read reports.
SCOPES = ("report", "read")
# last_used_at is a hint, not an audit log: write it at most this often per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(
    session: AsyncSession, org: Organization, name: str = "", scopes: Iterable[str] = SCOPES
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which is never retrievable again."""
    wanted = [scope for scope in SCOPES if scope in set(scopes)]
    unknown = set(scopes) - set(SCOPES)
    if unknown or not wanted:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}")
    prefix = KEY_PREFIX + secrets.token_hex(PREFIX_HEX // 2)
    full = f"{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        org_id=org.id, prefix=prefix, key_hash=_hash(full), name=name, scopes=",".join(wanted)
    )
    session.add(row)
    await session.flush()
    return row, full


PREFIX_HEX = 12


def prefix_of(presented: str) -> str | None:
    """The visible prefix of a presented key, or None when it is not shaped like ours."""
    size = len(KEY_PREFIX) + PREFIX_HEX
    if not presented.startswith(KEY_PREFIX) or presented[size : size + 1] != "_":
        return None
    return presented[:size]


async def authenticate(session: AsyncSession, presented: str) -> ApiKey | None:
    """The live key row matching ``presented`` (constant-time hash compare), or None."""
    prefix = prefix_of(presented)
    if prefix is None:
        return None
    row = (
        await session.execute(select(ApiKey).where(ApiKey.prefix == prefix))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _hash(presented)):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row


def has_scope(key: ApiKey, scope: str) -> bool:
    """True when the key may do what ``scope`` covers."""
    return scope in (key.scopes or "").split(",")
