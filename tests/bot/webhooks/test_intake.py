"""Group-committed intake on both engines: rows readable through the ORM, jobs claimable,
duplicates (even inside one batch) stored once."""

from __future__ import annotations

import asyncio
import json
import zlib

from sqlalchemy import select

from bot.runtime import Runtime
from bot.webhooks.intake import WEBHOOK_JOB, DeliveryWriter
from storage import queue
from storage.models import WebhookDelivery
from storage.types import utcnow


async def test_concurrent_deliveries_commit_once_each(runtime: Runtime) -> None:
    writer = DeliveryWriter(
        runtime.sessions, runtime.engine.dialect.name, sqlite_path=runtime.settings.sqlite_path
    )
    body = json.dumps({"action": "opened", "n": "x" * 2000}).encode()
    ids = [f"d-{n}" for n in range(60)]
    try:
        # Every id twice, concurrently: the second of each pair may share the first's batch.
        results = await asyncio.gather(
            *(writer.submit("github", i, "pull_request", body) for i in [*ids, *ids])
        )
    finally:
        await writer.close()
    assert sorted(results).count(True) == 60
    assert sorted(results).count(False) == 60
    async with runtime.sessions() as session:
        rows = list((await session.execute(select(WebhookDelivery))).scalars())
    assert sorted(r.delivery_id for r in rows) == sorted(ids)
    for row in rows:
        assert json.loads(zlib.decompress(row.body)) == json.loads(body)
        assert abs((utcnow() - row.received_at).total_seconds()) < 60
    async with runtime.sessions.begin() as session:
        jobs = await queue.claim(session, "w", lease_seconds=30, limit=500)
    assert len(jobs) == 60
    assert {j.kind for j in jobs} == {WEBHOOK_JOB}
    assert sorted(j.payload["delivery"] for j in jobs) == sorted(r.id for r in rows)


async def test_redelivery_in_a_later_batch_is_a_duplicate(runtime: Runtime) -> None:
    writer = DeliveryWriter(
        runtime.sessions, runtime.engine.dialect.name, sqlite_path=runtime.settings.sqlite_path
    )
    try:
        assert await writer.submit("github", "same", "ping", b"{}")
        assert not await writer.submit("github", "same", "ping", b"{}")
        assert await writer.submit("gitlab", "same", "push", b"{}")  # another provider's id space
    finally:
        await writer.close()
