"""Retention prunes done jobs, processed deliveries and old per-test results, in short
batches, on both engines; intake ids are never handed out again after pruning."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, func, insert, select, update
from sqlalchemy.engine import Connection

from bot.runtime import Runtime
from bot.webhooks.intake import DeliveryWriter
from storage import orgs, queue
from storage.models import Job, TestCycle, TestResultRow, WebhookDelivery
from storage.retention import RetentionPolicy, prune
from storage.types import utcnow

POLICY = RetentionPolicy(jobs_days=7, deliveries_days=3, history_days=30)


async def _count(runtime: Runtime, model: type) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_prune_keeps_what_is_live_or_recent_in_small_batches(runtime: Runtime) -> None:
    now = utcnow()
    async with runtime.sessions.begin() as session:
        ids = [await queue.enqueue(session, "k", {"n": n}) for n in range(9)]
    async with runtime.sessions.begin() as session:
        # 5 done 8 days ago, 1 done yesterday, 1 dead long ago, 1 queued long ago, 1 running.
        for job_id, status, age in [
            *[(i, "done", 8) for i in ids[:5]],
            (ids[5], "done", 1),
            (ids[6], "dead", 90),
            (ids[7], "queued", 90),
        ]:
            await session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(status=status, finished_at=now - timedelta(days=age))
            )
        await session.execute(update(Job).where(Job.id == ids[8]).values(status="running"))
        for n, (age, processed) in enumerate([(4, True), (4, True), (4, False), (1, True)]):
            session.add(
                WebhookDelivery(
                    provider="github",
                    delivery_id=f"d{n}",
                    event="push",
                    body=b"x",
                    received_at=now - timedelta(days=age),
                    processed_at=now if processed else None,
                )
            )
        org = await orgs.create_org(session, "acme")
        for name, age in (("old", 31), ("new", 2)):
            cycle = TestCycle(
                id=name, org_id=org.id, source="api", repository="acme/w", sha=name,
                created_at=now - timedelta(days=age),
            )  # fmt: skip
            session.add(cycle)
            await session.flush()
            await session.execute(
                insert(TestResultRow),
                [{"cycle_id": name, "name": f"t{i}", "status": "passed"} for i in range(3)],
            )

    deleted_per_statement: list[int] = []

    def record(conn: Connection, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deleted_per_statement.append(cursor.rowcount)  # type: ignore[attr-defined]

    event.listen(runtime.engine.sync_engine, "after_cursor_execute", record)
    try:
        report = await prune(runtime.sessions, POLICY, batch=2)
    finally:
        event.remove(runtime.engine.sync_engine, "after_cursor_execute", record)

    assert (report.jobs, report.deliveries, report.results) == (5, 2, 3)
    assert max(deleted_per_statement) <= 2  # never more than a batch per transaction
    async with runtime.sessions() as session:
        left = set((await session.execute(select(Job.id))).scalars())
        deliveries = set((await session.execute(select(WebhookDelivery.delivery_id))).scalars())
        results = set((await session.execute(select(TestResultRow.cycle_id))).scalars())
        cycles = set((await session.execute(select(TestCycle.id))).scalars())
    assert left == set(ids[5:])
    assert deliveries == {"d2", "d3"}  # unprocessed and recent ones stay
    assert results == {"new"}
    assert cycles == {"old", "new"}  # cycles keep their totals for the history chart
    assert (await prune(runtime.sessions, POLICY, batch=2)).jobs == 0


async def test_delivery_ids_are_not_reused_after_pruning(runtime: Runtime) -> None:
    """A delivery id names one delivery for good: a job still naming a pruned delivery must
    not find a newer one under its id (SQLite once numbered them max(id) + 1)."""
    writer = DeliveryWriter(
        runtime.sessions, runtime.engine.dialect.name, sqlite_path=runtime.settings.sqlite_path
    )
    try:
        for n in range(3):
            assert await writer.submit("github", f"first-{n}", "push", b"{}")
        async with runtime.sessions.begin() as session:
            first = set((await session.execute(select(WebhookDelivery.id))).scalars())
            await session.execute(
                update(WebhookDelivery).values(
                    processed_at=utcnow(), received_at=utcnow() - timedelta(days=10)
                )
            )
        report = await prune(runtime.sessions, POLICY)
        assert report.deliveries == 3
        assert await _count(runtime, WebhookDelivery) == 0
        assert await writer.submit("github", "second", "push", b"{}")
    finally:
        await writer.close()
    async with runtime.sessions() as session:
        [second] = (await session.execute(select(WebhookDelivery.id))).scalars()
    assert second > max(first)
