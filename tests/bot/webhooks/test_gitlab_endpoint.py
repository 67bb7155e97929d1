"""``POST /webhooks/gitlab/{org}`` through the application, on both engines: verified
against the organisation's secret before anything is stored, deduplicated on GitLab's
delivery id, and nothing from a rejected body in the log."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.runtime import Runtime
from providers.gitlab.inbound import sign
from storage import orgs
from storage.delivery_body import decode_body
from storage.models import Job, WebhookDelivery
from tests.bot.webhooks.test_endpoint import stored

SECRET = "gitlab-endpoint-secret-41d2"
EXAMPLE = Path(__file__).parents[2] / "fixtures" / "gitlab" / "webhooks" / "merge_request.open.json"
URL = "/webhooks/gitlab/acme"
STALE_SIGNATURE = {"webhook-signature": "v1,AAAA", "webhook-id": "w", "webhook-timestamp": "1"}


def hook_headers(**extra: str) -> dict[str, str]:
    return {
        "X-Gitlab-Event": "Merge Request Hook",
        "X-Gitlab-Token": SECRET,
        "X-Gitlab-Event-UUID": "2c9c6b0e-9a53-4f0e-8d0e-5b8d3c1f7a10",
        "Idempotency-Key": "b7e1c2d0-4c1e-4bfa-9a58-0f6a1d2e3c4b",
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "Content-Type": "application/json",
        **extra,
    }


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with runtime.sessions.begin() as session:
        acme = await orgs.create_org(session, "acme")
        await orgs.set_integration(
            session,
            runtime.vault,
            acme,
            "gitlab",
            webhook_secret=SECRET,
            base_url="https://gitlab.example.com",
        )
        await orgs.create_org(session, "bare")  # no GitLab integration at all
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await app.state.delivery_writer.close()


async def test_accepted_once_for_its_organisation_then_duplicate(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = EXAMPLE.read_bytes()
    first = await client.post(URL, content=body, headers=hook_headers())
    assert first.status_code == 202, first.text
    assert first.json() == {"status": "accepted", "delivery": hook_headers()["Idempotency-Key"]}
    # GitLab retries with the same Idempotency-Key (a new event UUID is not a new delivery).
    again = await client.post(
        URL, content=body, headers=hook_headers(**{"X-Gitlab-Event-UUID": "other"})
    )
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert await stored(runtime) == (1, 1)
    async with runtime.sessions() as session:
        row = (await session.execute(select(WebhookDelivery))).scalar_one()
        acme = await orgs.get_org(session, "acme")
        job = (await session.execute(select(Job))).scalar_one()
    assert (row.provider, row.event, row.org_id) == ("gitlab", "Merge Request Hook", acme.id)
    assert decode_body(row.body) == body
    assert job.payload == {"delivery": row.id, "provider": "gitlab"}


async def test_signed_webhooks_are_accepted(client: httpx.AsyncClient, runtime: Runtime) -> None:
    body = EXAMPLE.read_bytes()
    stamp = str(int(time.time()))
    headers = hook_headers(**{"webhook-id": "w-1", "webhook-timestamp": stamp})
    del headers["X-Gitlab-Token"]
    headers["webhook-signature"] = sign(SECRET, "w-1", stamp, body)
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert await stored(runtime) == (1, 1)


@pytest.mark.parametrize(
    ("url", "change", "code"),
    [
        (URL, {"X-Gitlab-Token": None}, "token_missing"),
        (URL, {"X-Gitlab-Token": "guess"}, "token_invalid"),
        (URL, {"X-Gitlab-Instance": "https://gitlab.evil.example"}, "instance_mismatch"),
        ("/webhooks/gitlab/bare", {}, "not_configured"),
        ("/webhooks/gitlab/nobody", {}, "not_configured"),
        (URL, STALE_SIGNATURE, "signature_expired"),
    ],
)
async def test_wrong_credentials_are_401_and_store_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    url: str,
    change: dict[str, str | None],
    code: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = EXAMPLE.read_bytes().replace(b'"MS-Viewport"', b'"forged-77ab"')
    headers = hook_headers()
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    with caplog.at_level(logging.DEBUG):
        response = await client.post(url, content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == code
    assert response.json()["detail"]
    assert SECRET not in response.text
    assert await stored(runtime) == (0, 0)
    assert "forged-77ab" not in caplog.text


async def test_malformed_headers_are_400_and_other_methods_405(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = EXAMPLE.read_bytes()
    headers = hook_headers()
    del headers["Idempotency-Key"], headers["X-Gitlab-Event-UUID"]
    response = await client.post(URL, content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (400, "delivery_missing")
    assert (await client.get(URL)).status_code == 405
    assert (await client.post("/webhooks/gitlab", content=body)).status_code in (404, 405)
    assert await stored(runtime) == (0, 0)
