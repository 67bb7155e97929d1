"""A transaction is all or nothing on both engines: savepoints inside it (create_cycle's, the
queue's), its DDL and its job claims commit with it, and a rollback or a crash undoes them.

SQLite's driver once opened transactions itself, at the first INSERT/UPDATE/DELETE only: a
SAVEPOINT before any of those began the transaction and its RELEASE committed it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cycles import PUBLISH_JOB, create_cycle
from bot.runtime import Runtime
from providers.context import CiContext
from storage import orgs, queue
from storage.models import Job, TestCycle

CRASHING = Path(__file__).with_name("crash_mid_transaction_process.py")


CONTEXT = CiContext(source="github", host="api.github.com", repository="acme/widgets", sha="a" * 40)


async def _org(runtime: Runtime) -> int:
    async with runtime.sessions.begin() as session:
        return (await orgs.create_org(session, "acme")).id


async def _count(runtime: Runtime, model: type[TestCycle] | type[Job]) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _cycle_and_its_job(session: AsyncSession, org_id: int) -> None:
    cycle, created = await create_cycle(session, org_id, CONTEXT)
    assert created
    await queue.enqueue(session, PUBLISH_JOB, {"cycle_id": cycle.id})


async def test_a_rolled_back_transaction_leaves_no_cycle(runtime: Runtime) -> None:
    org_id = await _org(runtime)
    async with runtime.sessions() as session:
        await _cycle_and_its_job(session, org_id)
        await session.rollback()
    assert await _count(runtime, TestCycle) == 0
    assert await _count(runtime, Job) == 0


async def test_an_exception_before_commit_leaves_no_cycle(runtime: Runtime) -> None:
    org_id = await _org(runtime)

    async def fail_before_commit() -> None:
        async with runtime.sessions.begin() as session:
            await _cycle_and_its_job(session, org_id)
            raise RuntimeError("between the cycle and the commit")

    with pytest.raises(RuntimeError, match="between the cycle and the commit"):
        await fail_before_commit()
    assert await _count(runtime, TestCycle) == 0
    assert await _count(runtime, Job) == 0


async def test_a_process_dying_before_commit_leaves_no_cycle(runtime: Runtime) -> None:
    org_id = await _org(runtime)
    child = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(CRASHING), runtime.settings.database_url, str(org_id)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (child.returncode, child.stdout) == (3, "created\n"), child.stderr
    assert await _count(runtime, TestCycle) == 0
    assert await _count(runtime, Job) == 0


async def test_a_savepoint_rollback_keeps_the_outer_work(runtime: Runtime) -> None:
    org_id = await _org(runtime)
    async with runtime.sessions.begin() as session:
        first, _ = await create_cycle(session, org_id, CONTEXT, idempotency_key="k")
        # The same idempotency key again: the unique index refuses it.
        with pytest.raises(IntegrityError):
            await _in_savepoint(session, TestCycle(**_cycle_columns(first), idempotency_key="k"))
        await queue.enqueue(session, PUBLISH_JOB, {"cycle_id": first.id})
    async with runtime.sessions() as session:
        ids = list((await session.execute(select(TestCycle.id))).scalars())
    assert ids == [first.id]
    assert await _count(runtime, Job) == 1


async def _in_savepoint(session: AsyncSession, cycle: TestCycle) -> None:
    async with session.begin_nested():
        session.add(cycle)
        await session.flush()


def _cycle_columns(cycle: TestCycle) -> dict[str, object]:
    """Another cycle for the same change, on another commit."""
    return {
        "org_id": cycle.org_id,
        "status": "collecting",
        "source": cycle.source,
        "host": cycle.host,
        "repository": cycle.repository,
        "sha": "b" * 40,
        "pipeline_id": "",
        "suite": cycle.suite,
        "files": [],
        "published": {},
    }


async def test_a_rolled_back_claim_leaves_the_job_queued(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        job_id = await queue.enqueue(session, "k")
    async with runtime.engine.connect() as conn:
        claimed = await queue.claim(conn, "w1", lease_seconds=30)
        assert [job.id for job in claimed] == [job_id]
        await conn.rollback()
    async with runtime.sessions() as session:
        job = await session.get(Job, job_id)
    assert job is not None
    assert (job.status, job.attempts, job.locked_by) == (queue.JobStatus.QUEUED, 0, None)


async def test_rolled_back_ddl_leaves_no_table(runtime: Runtime) -> None:

    async def fail_mid_migration() -> None:
        async with runtime.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE aac_half_migrated (n INTEGER)"))
            raise RuntimeError("mid-migration")

    with pytest.raises(RuntimeError, match="mid-migration"):
        await fail_mid_migration()
    async with runtime.engine.connect() as conn:
        # Selecting from a table that was never created fails on both engines.
        with pytest.raises(Exception, match="aac_half_migrated"):
            await conn.execute(text("SELECT n FROM aac_half_migrated"))
