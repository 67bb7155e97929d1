"""The App whose secret verified a delivery decides where it goes, through ``POST
/webhooks/github`` and the webhook job on both engines: a payload's URLs and ids are the
sender's word, the signature is proof."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.handlers.context import HandlerContext
from bot.handlers.webhook_event import WebhookEventJob
from bot.runtime import Runtime
from bot.webhooks.intake import WEBHOOK_JOB
from providers.factory import ProviderShared
from providers.github.app import configure_app
from providers.github.package import PACKAGE
from storage import orgs, queue
from storage.delivery_body import decode_body
from storage.models import GithubApp, Installation, WebhookDelivery

EXAMPLES = Path(__file__).parents[2] / "fixtures" / "github" / "webhooks"
DOTCOM_SECRET = "dotcom-secret-" + "a" * 20
GHES_SECRET = "ghes-secret-" + "b" * 20
GHES_URL = "https://ghe.example.com/api/v3"


@pytest.fixture
async def apps(runtime: Runtime, github_app_key: tuple[str, str]) -> tuple[GithubApp, GithubApp]:
    """github.com's App 1 and a GitHub Enterprise Server's App 2, each with an installation
    77 linked to a different tenant."""
    async with runtime.sessions.begin() as session:
        dotcom = await configure_app(
            session,
            runtime.vault,
            app_id=1,
            private_key_pem=github_app_key[0],
            webhook_secret=DOTCOM_SECRET,
        )
        ghes = await configure_app(
            session,
            runtime.vault,
            app_id=2,
            private_key_pem=github_app_key[0],
            webhook_secret=GHES_SECRET,
            api_url=GHES_URL,
        )
        victim = await orgs.create_org(session, "victim")
        other = await orgs.create_org(session, "other")
        for app, org in ((dotcom, victim), (ghes, other)):
            session.add(
                Installation(
                    github_app_id=app.id,
                    installation_id=77,
                    account_login=org.slug,
                    account_type="Organization",
                    org_id=org.id,
                    repositories=[],
                    permissions={},
                )
            )
    return dotcom, ghes


@pytest.fixture
async def http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.delivery_writer.close()


async def post(
    http: httpx.AsyncClient, payload: dict[str, Any], event: str, secret: str, delivery: str
) -> None:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={digest}",
        "Content-Type": "application/json",
    }
    response = await http.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 202, response.text


async def stored(runtime: Runtime, delivery: str) -> WebhookDelivery:
    async with runtime.sessions() as session:
        return (
            await session.execute(
                select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery)
            )
        ).scalar_one()


async def test_an_event_goes_to_the_installation_of_the_app_that_signed_it(
    runtime: Runtime, http: httpx.AsyncClient, apps: tuple[GithubApp, GithubApp]
) -> None:
    """Signed with the GHES App's secret, a payload whose repository URL claims github.com
    still reaches only the GHES App's installation 77 and its tenant."""
    _dotcom, ghes = apps
    payload = json.loads((EXAMPLES / "pull_request.opened.json").read_bytes())
    payload["installation"] = {"id": 77}
    name = payload["repository"]["full_name"]
    payload["repository"]["url"] = f"https://api.github.com/repos/{name}"
    await post(http, payload, "pull_request", GHES_SECRET, "d-pr")
    delivery = await stored(runtime, "d-pr")
    assert delivery.app_id == ghes.id
    event = PACKAGE.parse_event("pull_request", json.loads(decode_body(delivery.body)), set())
    async with runtime.sessions() as session:
        scope = await PACKAGE.scope(session, event, delivery.org_id, delivery.app_id)
    assert scope is not None
    assert scope.org.slug == "other"
    assert scope.host == "ghe.example.com"


async def test_an_installation_event_naming_another_app_is_ignored(
    runtime: Runtime, http: httpx.AsyncClient, apps: tuple[GithubApp, GithubApp]
) -> None:
    """Signed by the GHES App, an ``installation`` payload naming github.com's App (id 1,
    its token URL) creates nothing under github.com's App; signed by that App it does."""
    dotcom, _ghes = apps
    payload = json.loads((EXAMPLES / "installation.created.json").read_bytes())
    payload["installation"]["id"] = 5150
    payload["installation"]["app_id"] = dotcom.app_id
    payload["installation"]["access_tokens_url"] = (
        "https://api.github.com/app/installations/5150/access_tokens"
    )
    await post(http, payload, "installation", GHES_SECRET, "d-forged")
    assert await run_jobs_then_rows(runtime) == []
    assert (await stored(runtime, "d-forged")).processed_at is not None
    await post(http, payload, "installation", DOTCOM_SECRET, "d-genuine")
    assert await run_jobs_then_rows(runtime) == [dotcom.id]


async def run_jobs_then_rows(runtime: Runtime) -> list[int]:
    """Run the queued webhook jobs; the Apps installation 5150 is then stored under."""
    job = WebhookEventJob(HandlerContext(runtime, ProviderShared()))
    async with runtime.sessions.begin() as session:
        claimed = await queue.claim(session, "w", lease_seconds=30, limit=5, kinds=[WEBHOOK_JOB])
    for one in claimed:
        await job.run(one)
    async with runtime.sessions() as session:
        return list(
            (
                await session.execute(
                    select(Installation.github_app_id).where(Installation.installation_id == 5150)
                )
            ).scalars()
        )
