"""``POST /webhooks/github`` through the application (not only the router), on both engines:
verification before storage, deduplication, error shapes and what reaches the log."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from bot.app import create_app
from bot.runtime import Runtime
from bot.webhooks import endpoint as endpoint_module
from bot.webhooks.pacing import IntakeActivity, IntakeFirstPacer
from providers.github.app import configure_app
from storage.delivery_body import decode_body
from storage.models import Job, WebhookDelivery

SECRET = "endpoint-test-secret"
EXAMPLE = (
    Path(__file__).parents[2] / "fixtures" / "github" / "webhooks" / "pull_request.opened.json"
)
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def signed(body: bytes, *, event: str = "pull_request", delivery: str = DELIVERY) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={digest}",
        "Content-Type": "application/json",
    }


@pytest.fixture
async def client(
    runtime: Runtime, github_app_key: tuple[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    await configure(runtime, github_app_key)
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await app.state.delivery_writer.close()


async def stored(runtime: Runtime) -> tuple[int, int]:
    async with runtime.sessions() as session:
        deliveries = (await session.execute(select(func.count(WebhookDelivery.id)))).scalar_one()
        jobs = (await session.execute(select(func.count(Job.id)))).scalar_one()
    return int(deliveries), int(jobs)


async def test_accepted_once_then_duplicate(client: httpx.AsyncClient, runtime: Runtime) -> None:
    body = EXAMPLE.read_bytes()
    first = await client.post("/webhooks/github", content=body, headers=signed(body))
    assert first.status_code == 202
    assert first.json() == {"status": "accepted", "delivery": DELIVERY}
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-request-id"] == DELIVERY  # the delivery GUID ties the logs together
    again = await client.post("/webhooks/github", content=body, headers=signed(body))
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "delivery": DELIVERY}
    assert await stored(runtime) == (1, 1)
    async with runtime.sessions() as session:
        row = (await session.execute(select(WebhookDelivery))).scalar_one()
    assert (row.provider, row.event) == ("github", "pull_request")
    assert decode_body(row.body) == body  # exactly the bytes that were signed


async def test_ping_answers_pong_and_stores_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = b'{"zen": "Design for failure.", "hook_id": 1}'
    response = await client.post(
        "/webhooks/github", content=body, headers=signed(body, event="ping")
    )
    assert (response.status_code, response.json()) == (200, {"status": "pong"})
    assert await stored(runtime) == (0, 0)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"X-Hub-Signature-256": None}, 401, "signature_missing"),
        ({"X-Hub-Signature-256": "sha1=abc"}, 401, "signature_missing"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 401, "signature_invalid"),
        ({"X-GitHub-Event": None}, 400, "event_missing"),
        ({"X-GitHub-Event": "pull request"}, 400, "event_missing"),
        ({"X-GitHub-Delivery": None}, 400, "delivery_missing"),
        ({"X-GitHub-Delivery": "x" * 101}, 400, "delivery_missing"),
    ],
)
async def test_bad_requests_are_refused_before_storage(
    client: httpx.AsyncClient,
    runtime: Runtime,
    change: dict[str, str | None],
    status: int,
    code: str,
) -> None:
    body = EXAMPLE.read_bytes()
    headers = signed(body)
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    response = await client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["detail"]
    assert await stored(runtime) == (0, 0)


async def test_forged_bodies_never_reach_the_log(
    client: httpx.AsyncClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    body = EXAMPLE.read_bytes().replace(b'"opened"', b'"opened", "marker": "forged-3f9c1e"')
    headers = signed(body) | {"X-Hub-Signature-256": "sha256=" + "1" * 64}
    with caplog.at_level(logging.DEBUG):
        for _ in range(5):
            response = await client.post("/webhooks/github", content=body, headers=headers)
            assert response.status_code == 401
    assert "forged-3f9c1e" not in caplog.text
    # A flood is summarised, not logged request by request: the first at once, the rest later.
    summaries = [r for r in caplog.records if r.getMessage() == "webhooks rejected"]
    assert len(summaries) == 1
    assert summaries[0].rejected == {"signature_invalid": 1}  # type: ignore[attr-defined]


async def test_declared_oversize_body_is_413_unread(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    headers = signed(b"{}") | {"Content-Length": str(endpoint_module.MAX_WEBHOOK_BYTES + 1)}

    async def endless() -> AsyncIterator[bytes]:
        yield b"{}"

    response = await client.post("/webhooks/github", content=endless(), headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert await stored(runtime) == (0, 0)


async def test_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoint_module, "MAX_WEBHOOK_BYTES", 1000)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 400  # no Content-Length: the limit is enforced while reading

    response = await client.post("/webhooks/github", content=chunks(), headers=signed(b"x"))
    assert response.status_code == 413
    assert await stored(runtime) == (0, 0)


async def test_other_methods_get_a_json_405(client: httpx.AsyncClient) -> None:
    response = await client.get("/webhooks/github")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


async def test_a_storage_failure_is_a_json_500_not_a_lost_ack(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the PostgreSQL database is shared by the session; dropping a table would leak")
    async with runtime.engine.begin() as conn:
        await conn.execute(text("DROP TABLE webhook_deliveries"))
    body = EXAMPLE.read_bytes()
    response = await client.post("/webhooks/github", content=body, headers=signed(body))
    assert response.status_code == 500  # GitHub then shows the delivery as failed: redeliverable
    assert response.json()["error"] == "internal"
    assert response.headers["x-request-id"] == DELIVERY
    # The writer is still alive for the next delivery.
    response = await client.post("/webhooks/github", content=body, headers=signed(body))
    assert response.status_code == 500


async def test_only_verified_deliveries_count_as_intake_activity(
    runtime: Runtime, github_app_key: tuple[str, str]
) -> None:
    """A flood of forged requests, however fast, never makes the worker yield: the pacer
    counts only deliveries that passed verification."""
    await configure(runtime, github_app_key)
    app = create_app(runtime)
    activity = app.state.intake_activity = IntakeActivity(window=0.05)
    app.state.webhook_endpoints.exact["/webhooks/github"].activity = activity
    pacer = IntakeFirstPacer(activity, quiet=0.2, patience=0.5, burst_claim=1, busy_rate=50)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            forged = signed(b"{}") | {"X-Hub-Signature-256": "sha256=" + "2" * 64}
            for _ in range(6):  # far over 50/s for longer than the rate window
                responses = await asyncio.gather(
                    *(
                        http.post("/webhooks/github", content=b"{}", headers=forged)
                        for _ in range(40)
                    )
                )
                assert {r.status_code for r in responses} == {401}
            started = time.monotonic()
            assert await pacer(8) == 8
            assert time.monotonic() - started < 0.1  # not one patience spell waited out
            assert activity.last_request == float("-inf")
            body = EXAMPLE.read_bytes()
            response = await http.post("/webhooks/github", content=body, headers=signed(body))
            assert response.status_code == 202
        assert activity.last_request > float("-inf")  # a genuine delivery does count
    finally:
        await app.state.delivery_writer.close()


async def configure(runtime: Runtime, github_app_key: tuple[str, str]) -> None:
    async with runtime.sessions.begin() as session:
        await configure_app(
            session,
            runtime.vault,
            app_id=1,
            private_key_pem=github_app_key[0],
            webhook_secret=SECRET,
            slug="aac-test",
        )


async def test_shutdown_answers_every_request_in_flight(
    runtime: Runtime, github_app_key: tuple[str, str]
) -> None:
    """Requests waiting for their group commit when intake shuts down are all answered: 202
    and stored, or 503 and not stored; none hangs, none is a 500, none is acked unstored."""
    await configure(runtime, github_app_key)
    app = create_app(runtime)
    writer = app.state.delivery_writer
    activity = app.state.intake_activity
    body = EXAMPLE.read_bytes()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:

        async def post(n: int) -> httpx.Response:
            headers = signed(body, delivery=f"shutdown-{n}")
            return await http.post("/webhooks/github", content=body, headers=headers)

        first = [asyncio.create_task(post(n)) for n in range(80)]
        deadline = time.monotonic() + 10
        while not activity.writing:  # some are waiting for their commit now
            assert time.monotonic() < deadline
            await asyncio.sleep(0)
        closing = asyncio.create_task(writer.close())
        later = [asyncio.create_task(post(n)) for n in range(80, 120)]
        responses = await asyncio.wait_for(asyncio.gather(*first, *later), 15)
        await asyncio.wait_for(closing, 15)
    codes = [r.status_code for r in responses]
    assert set(codes) <= {202, 503}, codes
    assert 202 in codes
    assert 503 in codes
    accepted = {r.json()["delivery"] for r in responses if r.status_code == 202}
    refused = [r.json() for r in responses if r.status_code == 503]
    assert refused[0]["error"] == "shutting_down"
    assert refused[0]["detail"]
    async with runtime.sessions() as session:
        rows = set((await session.execute(select(WebhookDelivery.delivery_id))).scalars())
    assert rows == accepted
    assert await stored(runtime) == (len(accepted), len(accepted))
