"""``/aac approve``: a maintainer lets a fork's code run on the testing nodes.

Only the change's latest cycle waiting for approval is released, and only for an author the
SCM lets write to the repository: approving is vouching for the fork's code, which then runs
with the organisation's secrets.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cycles import queue_publish, same_change
from bot.events import RunApproved
from bot.handlers.context import EventRun, nothing
from bot.handlers.rerun import requester_may
from bot.runner_jobs import approve_runner_job
from storage.models import RunnerJob, TestCycle
from storage.runners import JobState

log = logging.getLogger("aac.handlers.approve")


async def handle(run: EventRun, event: RunApproved) -> None:
    """Check there is something to approve and who asks, then release it in one write."""
    async with run.hctx.runtime.sessions() as session:
        waiting = await awaiting_approval(session, run.org_id, run.host, event)
    if waiting is None:
        log.info("ignored /aac approve: no cycle of the change waits for approval")
        await run.write(nothing)  # the delivery is still marked processed
        return
    if not await requester_may(run, event):
        await run.write(nothing)
        return
    await run.write(lambda s: approve(s, run, event))


async def awaiting_approval(
    session: AsyncSession, org_id: int, host: str, event: RunApproved
) -> TestCycle | None:
    """The change's newest cycle whose runner job waits for a maintainer, if any."""
    rows = await session.execute(
        select(TestCycle)
        .join(RunnerJob, RunnerJob.cycle_id == TestCycle.id)
        .where(
            *same_change(org_id, event.source, host, event.repository),
            TestCycle.pr == event.number,
            RunnerJob.state == JobState.AWAITING_APPROVAL,
        )
        .order_by(TestCycle.created_at.desc())
    )
    return rows.scalars().first()


async def approve(session: AsyncSession, run: EventRun, event: RunApproved) -> RunnerJob | None:
    """Release the waiting job (read again in this transaction) and publish its cycle anew."""
    cycle = await awaiting_approval(session, run.org_id, run.host, event)
    if cycle is None:
        return None
    job = await approve_runner_job(session, cycle.id, event.requested_by or "")
    if job is not None:
        log.info("fork run approved", extra={"cycle": cycle.id, "by": event.requested_by})
        await queue_publish(session, cycle)
    return job
