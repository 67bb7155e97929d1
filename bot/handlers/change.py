"""A change (pull / merge request) opened, updated with new commits, or closed: opening
starts the configured suites with a "queued" status at once (a ``run`` suite's job queued for
the testing nodes); closing cancels what is still pending, testing-node jobs included."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.cycles import queue_publish, same_change
from bot.events import ChangeClosed, ChangeOpened
from bot.handlers.context import EventRun, suite_context
from bot.handlers.repo_files import read_repo_config
from bot.suite_runs import show_queued
from config.repo_config import RepoConfig
from storage import runners
from storage.models import TestCycle
from storage.types import utcnow

log = logging.getLogger("aac.handlers.change")


async def start_cycles(run: EventRun, event: ChangeOpened) -> None:
    """Read ``.aac.yml`` at the new head (no transaction open meanwhile), then open its
    suites' cycles in the job's one write; every suite already open: no write at all."""
    config = await read_repo_config(run, event.source, event.repository, event.sha)
    if config is None:
        return
    await run.write(lambda s: open_cycles(s, run, config, event), only_if_done=True)


async def open_cycles(
    session: AsyncSession, run: EventRun, config: RepoConfig, event: ChangeOpened
) -> list[TestCycle]:
    """Open one cycle per configured suite and queue its "queued" status (database only)."""
    suites = config.suites_for("pull_request", draft=event.draft)
    existing = {
        c.suite
        for c in await cycles.cycles_for_commit(
            session, run.org_id, event.source, run.host, event.repository, event.sha
        )
    }
    opened: list[TestCycle] = []
    for suite in suites:
        if suite.name in existing:
            continue
        ctx = suite_context(
            run, event, suite.name, trigger=cycles.PUSH_TRIGGER, extra=_head_extra(event)
        )
        cycle, created = await cycles.create_cycle(session, run.org_id, ctx)
        if created:
            opened.append(cycle)
            await show_queued(session, cycle, suite, from_fork=event.from_fork)
    return opened


def _head_extra(event: ChangeOpened) -> dict[str, object]:
    """Where the change's code comes from, kept on the cycle for the fork rule."""
    extra: dict[str, object] = {}
    if event.head_repository:
        extra["head_repository"] = event.head_repository
    if event.from_fork is not None:
        extra["from_fork"] = event.from_fork
    return extra


async def cancel_cycles(run: EventRun, event: ChangeClosed) -> None:
    """Closed or merged: cancel the change's pending cycles in the job's one write."""
    await run.write(lambda s: cancel_pending(s, run.org_id, run.host, event))


async def cancel_pending(
    session: AsyncSession, org_id: int, host: str, event: ChangeClosed
) -> list[TestCycle]:
    """The change's cycles still collecting or analysing are cancelled (and say so)."""
    rows = await session.execute(
        select(TestCycle).where(
            *same_change(org_id, event.source, host, event.repository),
            TestCycle.pr == event.number,
            TestCycle.status.in_(("collecting", "analysing")),
        )
    )
    cancelled = list(rows.scalars())
    for cycle in cancelled:
        cycle.status = "cancelled"
        cycle.completed_at = utcnow()
        await queue_publish(session, cycle)
    # Their testing-node jobs stop too: a queued one is dropped, a running one killed.
    await runners.cancel_cycle_jobs(session, [c.id for c in cancelled], "the change was closed")
    return cancelled
