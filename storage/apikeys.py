"""Organisation API keys for CI: shown once, stored as a SHA-256 hash with a visible prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ApiKey, Base, Organization
from storage.types import utcnow

KEY_PREFIX = "aac_"
# "report": create cycles, upload results, complete them; "read": list cycles, read reports;
# "run": start manual suites on the testing nodes, which run with the organisation's secrets.
SCOPES = ("report", "read", "run")
# A new key's scopes unless asked: a CI job holding a report key must not start node runs.
DEFAULT_SCOPES = ("report", "read")
# last_used_at is a hint, not an audit log: write it at most this often per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(secret: str) -> str:
    """What is stored of a shown-once credential (API keys, runner tokens)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token(key_prefix: str) -> tuple[str, str]:
    """A fresh credential shaped like ours: (visible prefix, full token)."""
    prefix = key_prefix + secrets.token_hex(PREFIX_HEX // 2)
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


async def create_api_key(
    session: AsyncSession, org: Organization, name: str = "", scopes: Iterable[str] = DEFAULT_SCOPES
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which is never retrievable again."""
    wanted = [scope for scope in SCOPES if scope in set(scopes)]
    unknown = set(scopes) - set(SCOPES)
    if unknown or not wanted:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}")
    prefix, full = new_token(KEY_PREFIX)
    row = ApiKey(
        org_id=org.id, prefix=prefix, key_hash=hash_token(full), name=name, scopes=",".join(wanted)
    )
    session.add(row)
    await session.flush()
    return row, full


PREFIX_HEX = 12


def prefix_of(presented: str, key_prefix: str = KEY_PREFIX) -> str | None:
    """The visible prefix of a presented key, or None when it is not shaped like ours."""
    size = len(key_prefix) + PREFIX_HEX
    if not presented.startswith(key_prefix) or presented[size : size + 1] != "_":
        return None
    return presented[:size]


T = TypeVar("T", bound=Base)


async def live_token_row(
    session: AsyncSession,
    model: type[T],
    presented: str,
    *,
    key_prefix: str,
    hash_column: str,
) -> T | None:
    """The unrevoked row of ``model`` whose visible prefix and hash match ``presented``
    (constant-time compare), or None. Shared by API keys and runner tokens."""
    prefix = prefix_of(presented, key_prefix)
    if prefix is None:
        return None
    column: Any = getattr(model, "prefix")  # noqa: B009 - a column of any token model
    row: T | None = (
        await session.execute(select(model).where(column == prefix))
    ).scalar_one_or_none()
    if row is None or getattr(row, "revoked_at", None) is not None:
        return None
    return row if hmac.compare_digest(getattr(row, hash_column), hash_token(presented)) else None


async def authenticate(session: AsyncSession, presented: str) -> ApiKey | None:
    """The live key row matching ``presented`` (constant-time hash compare), or None."""
    row = await live_token_row(
        session, ApiKey, presented, key_prefix=KEY_PREFIX, hash_column="key_hash"
    )
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row


def has_scope(key: ApiKey, scope: str) -> bool:
    """True when the key may do what ``scope`` covers."""
    return scope in (key.scopes or "").split(",")
