"""Starting a suite at a commit a pull request's push did not start it for: ``/aac run``,
``aac cycles run`` and the API's manual start, and ``/aac rerun`` of a ``run`` suite.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.cycle_report import cycle_context
from bot.runner_jobs import queue_runner_jobs
from config.repo_config import SuiteConfig
from providers.context import CiContext
from storage.models import TestCycle


def context_of(cycle: TestCycle, *, trigger: str) -> CiContext:
    """A new cycle's context at ``cycle``'s change and commit, keeping what its code's origin
    (the fork rule) and its App installation were."""
    # Not its pipeline or attempt: the new cycle is a run of its own (``open_attempt``).
    return replace(
        cycle_context(cycle), pipeline_id=None, pipeline_url=None, run_attempt=1, trigger=trigger
    )


async def start_suite(
    session: AsyncSession, org_id: int, ctx: CiContext, suite: SuiteConfig
) -> tuple[TestCycle, bool]:
    """Open a fresh attempt of ``suite`` at ``ctx.sha`` (or find the one still running), show
    it queued, and for a ``run`` suite queue its testing-node job; whether it was opened now.

    The fork rule comes from the context's ``extra`` (a fork's code waits for ``/aac approve``
    or is refused, as when its push started it).
    """
    cycle, created = await cycles.open_attempt(session, org_id, replace(ctx, suite=suite.name))
    if created:
        await show_queued(session, cycle, suite)
    return cycle, created


async def show_queued(
    session: AsyncSession, cycle: TestCycle, suite: SuiteConfig, *, from_fork: bool | None = None
) -> None:
    """A cycle opened now: queue its "queued" status and, for a ``run`` suite, its
    testing-node job (``from_fork`` as ``queue_runner_jobs`` takes it)."""
    await cycles.queue_publish(session, cycle)
    await queue_runner_jobs(session, cycle, suite, from_fork=from_fork)
