from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from bot.app import create_app
from bot.jobs import job_handlers
from bot.runtime import Runtime
from storage import apikeys, orgs


@dataclass
class ApiHarness:
    client: httpx.AsyncClient
    runtime: Runtime
    key: str
    other_key: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[ApiHarness]:
    async with runtime.sessions.begin() as session:
        acme = await orgs.create_org(session, "acme")
        other = await orgs.create_org(session, "globex")
        _, key = await apikeys.create_api_key(session, acme, "ci")
        _, other_key = await apikeys.create_api_key(session, other, "ci")
    app = create_app(runtime, handlers=job_handlers(runtime))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield ApiHarness(client, runtime, key, other_key)
