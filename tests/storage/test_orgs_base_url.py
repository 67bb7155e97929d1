"""An integration's base URL is where its token is sent: https:// only (plain http:// to this
machine alone, for local test servers), with no credentials in it. The error says exactly
that, and a rejected URL stores nothing."""

from __future__ import annotations

import pytest

from bot.runtime import Runtime
from storage import orgs
from tests.db_snapshot import snapshot

TOKEN = "glpat-" + "BaseUrlT0kenBaseUrl1"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://gitlab.example.com", "https://gitlab.example.com"),
        ("https://gitlab.example.com/", "https://gitlab.example.com"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3"),
        ("https://devops.example.com:8443/tfs/DefaultCollection", None),
        ("http://localhost:8080", None),
        ("http://127.0.0.1:3000/api/v4", None),
        ("http://[::1]:3000", None),
    ],
)
async def test_accepted(runtime: Runtime, given: str, stored: str | None) -> None:
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        await orgs.set_integration(
            session, runtime.vault, org, "gitlab", token=TOKEN, base_url=given
        )
    async with runtime.sessions() as session:
        org = await orgs.get_org(session, "acme")
        assert org.integrations["gitlab"].base_url == (stored or given)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("http://gitlab.example.com", "must start with https:// (http:// is accepted only for"),
        ("http://10.0.0.5/gitlab", "must start with https://"),
        ("http://localhost.evil.example", "must start with https://"),
        ("gitlab.example.com", "must start with https://"),
        ("ftp://gitlab.example.com", "must start with https://"),
        ("https://", "must be a server address"),
        ("https://gitlab.example.com/?private_token=glpat-Secret123", "no query or fragment"),
        ("http://gitlab.example.com/glpat-Secret123", "must start with https://"),
        ("https://gitlab.example.com:99999/glpat-Secret123", "has an invalid port"),
        ("https://gitlab.example.com:99999", "has an invalid port"),
        ("https://oauth2:glpat-Secret123@gitlab.example.com", "must not contain credentials"),
    ],
)
async def test_rejected_clearly_and_nothing_stored(
    runtime: Runtime, given: str, message: str
) -> None:
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        await orgs.set_integration(
            session, runtime.vault, org, "gitlab", token=TOKEN, base_url="https://old.example.com"
        )
    before = await snapshot(runtime.engine)
    async with runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        with pytest.raises(orgs.OrgError, match="base URL") as info:
            await orgs.set_integration(
                session, runtime.vault, org, "gitlab", token="glpat-other", base_url=given
            )
    assert message in str(info.value)
    assert "glpat-Secret123" not in str(info.value)  # a path or query may carry a token
    assert await snapshot(runtime.engine) == before
