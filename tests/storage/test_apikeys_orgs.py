from __future__ import annotations

import pytest

from bot.runtime import Runtime
from storage import apikeys, orgs


async def test_api_keys_authenticate_and_are_stored_hashed(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        made = [await apikeys.create_api_key(session, org, f"k{i}") for i in range(40)]
    for row, full in made:
        assert full.startswith(row.prefix + "_")
        assert full not in row.key_hash
        assert row.key_hash != full
        async with runtime.sessions.begin() as session:
            found = await apikeys.authenticate(session, full)
            assert found is not None
            assert found.id == row.id
            assert found.last_used_at is not None
    row, full = made[0]
    async with runtime.sessions.begin() as session:
        assert (
            await apikeys.authenticate(session, full[:-1] + ("A" if full[-1] != "A" else "B"))
            is None
        )
        assert await apikeys.authenticate(session, "aac_nothex_x") is None
        assert await apikeys.authenticate(session, "") is None


async def test_org_slugs_are_validated_and_unique(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        await orgs.create_org(session, "acme")
    for bad in ("Acme", "-acme", "a b", "x" * 65, ""):
        async with runtime.sessions.begin() as session:
            with pytest.raises(orgs.OrgError, match="not valid"):
                await orgs.create_org(session, bad)
    async with runtime.sessions.begin() as session:
        with pytest.raises(orgs.OrgError, match="already exists"):
            await orgs.create_org(session, "acme")
        with pytest.raises(orgs.OrgError, match="no organisation 'nope'"):
            await orgs.get_org(session, "nope")
    async with runtime.sessions() as session:
        assert [o.slug for o in await orgs.list_orgs(session)] == ["acme"]
