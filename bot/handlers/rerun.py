"""Re-run and re-analyse: a button in the SCM (GitHub's check run actions and "Re-run"),
and ``/aac rerun`` / ``/aac reanalyse`` comments or notes from users who may write to the
repository.

Three steps, so that no transaction is open while the SCM is asked anything (a re-run is a
paced write, whose write slot is a row update on another connection: inside the job's
transaction on SQLite it waited for the write lock that transaction held). ``plan`` reads
in a short session of its own and then checks the requester's permission; ``apply``
re-analyses in the job's transaction and returns the pipelines to re-run; ``rerun_pipelines``
asks the SCM for those once that transaction has committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.cycles import same_change
from bot.events import RerunRequested, RunApproved
from bot.handlers.context import EventRun
from bot.handlers.pipeline import RERUN_PIPELINE_KEYS
from providers.base import (
    AnswersRefusedCommands,
    ChecksCommandPermission,
    KnowsBotIdentity,
    RerunsPipelines,
)
from providers.context import CiContext
from storage import queue
from storage.models import TestCycle

log = logging.getLogger("aac.handlers.rerun")


async def _targets(
    session: AsyncSession, org_id: int, host: str, event: RerunRequested
) -> list[TestCycle]:
    query = select(TestCycle).where(*same_change(org_id, event.source, host, event.repository))
    if event.cycle_id:
        query = query.where(TestCycle.id == event.cycle_id)
    elif event.sha:
        query = query.where(TestCycle.sha == event.sha)
    elif event.number:
        query = query.where(TestCycle.pr == event.number)
    else:
        return []
    rows = list((await session.execute(query.order_by(TestCycle.created_at.desc()))).scalars())
    latest: dict[str, TestCycle] = {}
    for cycle in rows:
        if cycle.status != "superseded":
            latest.setdefault(cycle.suite, cycle)
    return list(latest.values())


@dataclass(frozen=True, slots=True)
class RerunDone:
    """What ``apply`` did, one line per cycle (for logs and tests), and the pipelines still
    to re-run once its transaction has committed."""

    done: list[str]
    pipelines: list[str]


async def handle(run: EventRun, event: RerunRequested) -> None:
    """Plan, then re-analyse in one write, then re-run the pipelines."""
    if not await allowed(run, event):
        await run.write(_nothing)  # the delivery is still marked processed
        return
    done = await run.write(lambda s: apply(s, run, event))
    await rerun_pipelines(run, event, done.pipelines)


async def allowed(run: EventRun, event: RerunRequested) -> bool:
    """False when there is nothing to act on or the requester may not ask for it."""
    async with run.hctx.runtime.sessions() as session:
        if not await _targets(session, run.org_id, run.host, event):
            return False
    if not event.needs_permission_check:
        return True
    return await requester_may(run, event)


async def requester_may(run: EventRun, event: RerunRequested | RunApproved) -> bool:
    """Whether the chat command's author may ask for it: one the SCM lets write to the
    repository, and not the bot itself. A refused author is told so where the SCM can."""
    provider = run.provider
    may = False
    if isinstance(provider, ChecksCommandPermission) and event.requested_by:
        may = await provider.may_run_commands(event.repository, event.requested_by)
    if not may:
        log.info(
            "ignored /aac command from a user who may not write to the repository",
            extra={"user": event.requested_by},
        )
        if isinstance(provider, AnswersRefusedCommands) and event.requested_by and event.number:
            ctx = CiContext(
                source=event.source,
                host=run.host,
                repository=event.repository,
                sha=event.sha or "",
                pr=event.number,
            )
            await provider.refuse_command(ctx, event.requested_by)
        return False
    # The bot's own notes, where the SCM's payload could not tell (GitLab names no bot).
    if isinstance(provider, KnowsBotIdentity) and event.requested_by == await provider.bot_login():
        log.info("ignored /aac command written by the bot itself")
        return False
    return True


async def _nothing(_session: AsyncSession) -> None:
    return None


def _pipeline(cycle: TestCycle) -> str | None:
    extra = cycle.context_extra or {}
    for key in RERUN_PIPELINE_KEYS:
        if extra.get(key):
            return str(extra[key])
    return None


async def apply(session: AsyncSession, run: EventRun, event: RerunRequested) -> RerunDone:
    """Re-run the pipeline behind each target cycle when the provider can, else re-analyse.

    Only the database changes here, in the caller's transaction; the targets are read again
    in it, since they may have moved on while the permission was checked.
    """
    done: list[str] = []
    pipelines: list[str] = []
    can_rerun = isinstance(run.provider, RerunsPipelines)
    for cycle in await _targets(session, run.org_id, run.host, event):
        pipeline = _pipeline(cycle)
        if not event.reanalyse and pipeline and can_rerun:
            pipelines.append(pipeline)
            done.append(f"rerun {cycle.id}")
            continue
        if cycle.status in ("collecting", "cancelled", "superseded"):
            continue
        cycle.status = "analysing"
        cycle.analysis = None
        await queue.enqueue(
            session,
            cycles.ANALYSE_JOB,
            {"cycle_id": cycle.id, "reanalyse": True},
            unique_key=f"analyse:{cycle.id}",
        )
        # No "in progress" update queued here: the analysis shows it if the model takes a
        # while (bot/analyse.py), and only then, after which it publishes the report.
        done.append(f"reanalyse {cycle.id}")
    return RerunDone(done, pipelines)


async def rerun_pipelines(run: EventRun, event: RerunRequested, pipelines: list[str]) -> None:
    """Ask the SCM's CI to re-run ``pipelines``; called after ``apply`` has committed.

    At least once: a failure here (or a crash after that commit, which leaves the job to be
    claimed again when its lease ends) retries the whole event. The retry re-queues the
    re-analyses (a pending one is coalesced by its unique key; a finished one runs once more,
    which is harmless) and asks for these re-runs again: a run re-run twice is the cost of
    never losing one.
    """
    provider = run.provider
    if not isinstance(provider, RerunsPipelines):
        return
    for pipeline in pipelines:
        await provider.rerun_pipeline(event.repository, pipeline)
