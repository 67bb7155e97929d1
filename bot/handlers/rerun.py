"""Re-run and re-analyse: a button in the SCM (GitHub's check run actions and "Re-run"),
and ``/aac rerun`` / ``/aac reanalyse`` comments or notes from users who may write to the
repository. Re-running a ``run`` suite's cycle runs the suite again on a testing node, as a
new attempt at the same commit (bot/cycles.py ``open_attempt``); a ``report`` suite's re-runs
the pipeline behind it where the SCM can, else re-analyses.

Three steps, so that no transaction is open while the SCM is asked anything (a re-run is a
paced write, whose write slot is a row update on another connection: inside the job's
transaction on SQLite it waited for the write lock that transaction held). ``plan`` reads
in a short session of its own and then checks the requester's permission; ``apply``
re-analyses in the job's transaction and returns the pipelines to re-run; ``rerun_pipelines``
asks the SCM for those once that transaction has committed, and marks a cycle whose pipeline
the SCM re-runs in place (RERUN_ASKED) in a short write of its own after each answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.cycles import same_change
from bot.events import RerunRequested, RunApproved, RunRequested
from bot.handlers.context import EventRun, nothing
from bot.handlers.pipeline import RERUN_ASKED, RERUN_PIPELINE_KEYS
from bot.handlers.repo_files import read_repo_config
from bot.suite_runs import context_of, start_suite
from config.repo_config import SuiteConfig
from providers.base import (
    AnswersRefusedCommands,
    ChecksCommandPermission,
    KnowsBotIdentity,
    RerunsPipelines,
)
from providers.context import CiContext
from storage import queue
from storage.models import RunnerJob, TestCycle

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
class PipelineRerun:
    """A pipeline to re-run, and the cycle it filled (to mark if it re-runs in place)."""

    cycle_id: str
    pipeline_id: str


@dataclass(frozen=True, slots=True)
class RerunDone:
    """What ``apply`` did, one line per cycle (for logs and tests), and the pipelines still
    to re-run once its transaction has committed."""

    done: list[str]
    pipelines: list[PipelineRerun]


# The suite each re-run ``run`` suite's cycle (by commit and suite) runs again, as
# ``.aac.yml`` at that commit says; None: the file gave no ``run`` suite of that name.
NodeRuns = dict[tuple[str, str], SuiteConfig | None]


async def handle(run: EventRun, event: RerunRequested) -> None:
    """Plan, then re-analyse or start the node runs in one write, then re-run the pipelines."""
    async with run.hctx.runtime.sessions() as session:
        targets = await _targets(session, run.org_id, run.host, event)
        node_jobs = await _cycles_with_node_jobs(session, targets)
    if not targets or not await allowed(run, event):
        await run.write(nothing)  # the delivery is still marked processed
        return
    node_runs = await node_run_suites(run, event, [c for c in targets if c.id in node_jobs])
    done = await run.write(lambda s: apply(s, run, event, node_runs))
    await rerun_pipelines(run, event, done.pipelines)


async def _cycles_with_node_jobs(session: AsyncSession, targets: list[TestCycle]) -> set[str]:
    """The ids of the targets a testing node ran (their cycle has a runner job)."""
    rows = await session.execute(
        select(RunnerJob.cycle_id).where(RunnerJob.cycle_id.in_([c.id for c in targets]))
    )
    return set(rows.scalars())


async def node_run_suites(
    run: EventRun, event: RerunRequested, node_cycles: list[TestCycle]
) -> NodeRuns:
    """For the targets a testing node ran, their suite in ``.aac.yml`` at their commit, read
    before any transaction opens; none to re-analyse."""
    if event.reanalyse:
        return {}
    found: NodeRuns = {}
    for cycle in node_cycles:
        config = await read_repo_config(run, event.source, event.repository, cycle.sha)
        suites = [s for s in (config.suites if config else []) if s.name == cycle.suite]
        found[(cycle.sha, cycle.suite)] = suites[0] if suites and suites[0].run else None
    return found


async def allowed(run: EventRun, event: RerunRequested) -> bool:
    """Whether the requester may ask for it (a button in the SCM needs no check)."""
    if not event.needs_permission_check:
        return True
    return await requester_may(run, event)


def command_context(run: EventRun, event: RerunRequested | RunApproved | RunRequested) -> CiContext:
    """The change a chat command was written on, to answer it there."""
    return CiContext(
        source=event.source,
        host=run.host,
        repository=event.repository,
        sha=event.sha or "",
        pr=event.number,
    )


async def requester_may(run: EventRun, event: RerunRequested | RunApproved | RunRequested) -> bool:
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
            await provider.refuse_command(
                command_context(run, event), event.requested_by, event.command
            )
        return False
    # The bot's own notes, where the SCM's payload could not tell (GitLab names no bot).
    if isinstance(provider, KnowsBotIdentity) and event.requested_by == await provider.bot_login():
        log.info("ignored /aac command written by the bot itself")
        return False
    return True


def _pipeline(cycle: TestCycle) -> str | None:
    extra = cycle.context_extra or {}
    for key in RERUN_PIPELINE_KEYS:
        if extra.get(key):
            return str(extra[key])
    return None


async def apply(
    session: AsyncSession, run: EventRun, event: RerunRequested, node_runs: NodeRuns | None = None
) -> RerunDone:
    """Run a testing node's suite again as a fresh cycle; re-run the pipeline behind any other
    target cycle when the provider can, else re-analyse it.

    Only the database changes here, in the caller's transaction; the targets are read again
    in it, since they may have moved on while the permission was checked.
    """
    done: list[str] = []
    pipelines: list[PipelineRerun] = []
    can_rerun = isinstance(run.provider, RerunsPipelines)
    node_runs = node_runs or {}
    for cycle in await _targets(session, run.org_id, run.host, event):
        if (cycle.sha, cycle.suite) in node_runs:
            done.append(await _run_again(session, run, cycle, node_runs[(cycle.sha, cycle.suite)]))
            continue
        pipeline = _pipeline(cycle)
        if not event.reanalyse and pipeline and can_rerun:
            pipelines.append(PipelineRerun(cycle.id, pipeline))
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


async def _run_again(
    session: AsyncSession, run: EventRun, cycle: TestCycle, suite: SuiteConfig | None
) -> str:
    """A fresh node run of ``cycle``'s suite at its commit (the fork rule as for its push); a
    cycle still running, or a suite ``.aac.yml`` no longer runs, is left as it is."""
    if suite is None:
        log.info("not re-run: .aac.yml has no run suite of that name", extra={"cycle": cycle.id})
        return f"skip {cycle.id}"
    fresh, created = await start_suite(
        session, run.org_id, context_of(cycle, trigger=cycle.trigger), suite
    )
    return f"run {fresh.id}" if created else f"running {fresh.id}"


async def rerun_pipelines(
    run: EventRun, event: RerunRequested, pipelines: list[PipelineRerun]
) -> None:
    """Ask the SCM's CI to re-run ``pipelines``; called after ``apply`` has committed. Each
    one re-run in place marks its cycle in a short write right after the SCM's answer.

    At least once: a failure here (or a crash after that commit, which leaves the job to be
    claimed again when its lease ends) retries the whole event. The retry re-queues the
    re-analyses (a pending one is coalesced by its unique key; a finished one runs once more,
    which is harmless) and asks for these re-runs again: a run re-run twice is the cost of
    never losing one. A crash between the SCM's answer and the mark is covered the same way:
    the providers answer "in place" again for a run still running from the first ask.
    """
    provider = run.provider
    if not isinstance(provider, RerunsPipelines):
        return
    for rerun in pipelines:
        if await provider.rerun_pipeline(event.repository, rerun.pipeline_id):
            await run.write(partial(mark_rerun_asked, cycle_id=rerun.cycle_id))


async def mark_rerun_asked(session: AsyncSession, *, cycle_id: str) -> None:
    """Mark the cycle whose pipeline the SCM re-runs in place (same pipeline id and attempt):
    the mark tells the re-run's finished hook from a redelivery of the first run's. Set only
    after the SCM said so: a mark for a re-run that never comes would turn a later redelivery
    into a spurious next attempt."""
    cycle = await session.get(TestCycle, cycle_id)
    if cycle is not None:
        cycle.context_extra = {**(cycle.context_extra or {}), RERUN_ASKED: True}
