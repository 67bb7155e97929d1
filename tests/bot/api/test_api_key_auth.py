"""A wrong API key that looks right: our prefix, an existing key's visible part, a wrong secret.
It reaches the hash comparison, is refused with a JSON 401, and changes nothing stored, not
even the key's last-used time."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update

from storage.apikeys import authenticate, prefix_of
from storage.models import ApiKey
from storage.types import utcnow
from tests.bot.api.conftest import ApiHarness
from tests.bot.api.test_cycles_api import CONTEXT
from tests.db_snapshot import snapshot


def _same_prefix_wrong_secret(key: str) -> str:
    prefix = prefix_of(key)
    assert prefix is not None
    wrong = f"{prefix}_{secrets.token_urlsafe(32)}"
    assert len(wrong) == len(key)
    assert wrong != key
    assert prefix_of(wrong) == prefix  # finds the row, so the hash comparison decides
    return wrong


async def _last_used(api: ApiHarness) -> object:
    async with api.runtime.sessions() as session:
        return (
            await session.execute(
                select(ApiKey.last_used_at).where(ApiKey.prefix == prefix_of(api.key))
            )
        ).scalar_one()


async def test_wrong_secret_behind_a_valid_prefix_is_401_and_changes_nothing(
    api: ApiHarness,
) -> None:
    # Used long ago, so that any successful authentication would move last_used_at.
    long_ago = utcnow() - timedelta(hours=2)
    async with api.runtime.sessions.begin() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.prefix == prefix_of(api.key)).values(last_used_at=long_ago)
        )
    before = await snapshot(api.runtime.engine)
    wrong = _same_prefix_wrong_secret(api.key)

    for request in (
        api.client.post("/api/v1/cycles", json=CONTEXT, headers=api.auth(wrong)),
        api.client.get("/api/v1/cycles", headers=api.auth(wrong)),
    ):
        refused = await request
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json() == {
            "error": "unauthorized",
            "detail": "the API key is not valid or was revoked",
        }
        assert wrong not in refused.text

    assert await snapshot(api.runtime.engine) == before
    assert await _last_used(api) == long_ago

    # The right key does move it: the comparison above could see a change.
    assert (await api.client.get("/api/v1/cycles", headers=api.auth())).status_code == 200
    assert await _last_used(api) != long_ago


async def test_authenticate_leaves_the_row_alone_for_a_wrong_secret(api: ApiHarness) -> None:
    """The same at the storage layer, where nothing rolls back for us: a caller that commits
    after a failed check (a future route, a CLI) must not record a use either."""
    wrong = _same_prefix_wrong_secret(api.key)
    async with api.runtime.sessions.begin() as session:
        assert await authenticate(session, wrong) is None
    assert await _last_used(api) is None
    async with api.runtime.sessions.begin() as session:
        assert await authenticate(session, api.key) is not None
    assert await _last_used(api) is not None
