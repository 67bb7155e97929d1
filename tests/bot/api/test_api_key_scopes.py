"""API key scopes (report, read) and the per-address limit on failed authentications,
through the HTTP API."""

from __future__ import annotations

import pytest

from bot.api.ratelimit import RateLimiter
from bot.cli import API_KEY_SCOPES
from storage import apikeys, orgs
from tests.bot.api.conftest import ApiHarness
from tests.bot.api.test_cycles_api import CONTEXT, JUNIT


async def _key(api: ApiHarness, *scopes: str) -> str:
    async with api.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        _, key = await apikeys.create_api_key(session, org, "scoped", scopes)
    return key


async def test_a_report_key_reports_but_cannot_read(api: ApiHarness) -> None:
    key = await _key(api, "report")
    created = await api.client.post("/api/v1/cycles", json=CONTEXT, headers=api.auth(key))
    assert created.status_code == 201
    cycle = created.json()
    uploaded = await api.client.post(
        cycle["upload_url"], content=JUNIT, headers={**api.auth(key), "X-Filename": "j.xml"}
    )
    assert uploaded.status_code == 200
    # Its own cycle's status, for `aac report --wait`.
    polled = await api.client.get(f"/api/v1/cycles/{cycle['id']}", headers=api.auth(key))
    assert polled.status_code == 200
    for path in ("/api/v1/cycles", f"/cycles/{cycle['id']}"):
        refused = await api.client.get(path, headers=api.auth(key))
        assert refused.status_code == 403
        body = refused.json()
        assert body["error"] == "insufficient_scope"
        assert "--scope read" in body["detail"]
    completed = await api.client.post(
        cycle["complete_url"], json={"exit_code": 1}, headers=api.auth(key)
    )
    assert completed.status_code == 202


async def test_a_read_key_reads_but_cannot_report(api: ApiHarness) -> None:
    key = await _key(api, "read")
    refused = await api.client.post("/api/v1/cycles", json=CONTEXT, headers=api.auth(key))
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    assert "--scope report" in refused.json()["detail"]
    cycle = (await api.client.post("/api/v1/cycles", json=CONTEXT, headers=api.auth())).json()
    for method, url in (("POST", cycle["upload_url"]), ("POST", cycle["complete_url"])):
        response = await api.client.request(method, url, json={}, headers=api.auth(key))
        assert response.status_code == 403
    listed = await api.client.get("/api/v1/cycles", headers=api.auth(key))
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["cycles"]] == [cycle["id"]]


async def test_keys_have_both_scopes_by_default(api: ApiHarness) -> None:
    async with api.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        row, _ = await apikeys.create_api_key(session, org)
        assert row.scopes == "report,read"
        with pytest.raises(ValueError, match="scopes must be among"):
            await apikeys.create_api_key(session, org, "x", ["admin"])
    assert API_KEY_SCOPES == apikeys.SCOPES


@pytest.fixture
def few_failures(api: ApiHarness) -> None:
    app = api.client._transport.app  # type: ignore[attr-defined]
    app.state.auth_failure_limiter = RateLimiter(3)


@pytest.mark.usefixtures("few_failures")
async def test_failed_authentications_are_limited_per_address(api: ApiHarness) -> None:
    wrong = {"Authorization": "Bearer aac_000000000000_" + "x" * 43}
    for _ in range(3):
        assert (await api.client.get("/api/v1/cycles", headers=wrong)).status_code == 401
    limited = await api.client.get("/api/v1/cycles", headers=wrong)
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    # The address is throttled before any lookup, whatever key it sends next.
    assert (await api.client.get("/api/v1/cycles", headers=api.auth())).status_code == 429
