"""``/aac run [SUITE]``: a user who may write to the repository starts a suite with the
``manual`` trigger (every such suite when none is named) at the change's latest commit.

As the other chat commands: the SCM is asked first (the requester's permission, ``.aac.yml``
at that commit) with no transaction open, then one write opens the cycles, queues their
"queued" status and their testing-node jobs. A request that starts nothing is answered on
the change where the provider can, and logged.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cycles import latest_of_change
from bot.events import RunRequested
from bot.handlers.context import EventRun, nothing
from bot.handlers.repo_files import read_repo_config
from bot.handlers.rerun import command_context, requester_may
from bot.manual_runs import MANUAL, ManualRunRefused, chat_reply, manual_suites
from bot.suite_runs import context_of, start_suite
from config.repo_config import SuiteConfig
from providers.base import AnswersCommands
from providers.context import CiContext
from storage.models import TestCycle

log = logging.getLogger("aac.handlers.manual_run")
NO_COMMIT = (
    "no commit of this change is known to the bot yet, so there is nothing to run; push a "
    "commit (or reopen the change) and ask again."
)


async def handle(run: EventRun, event: RunRequested) -> None:
    """Check who asks, find the change's head and its manual suites, then start them."""
    if not await requester_may(run, event):
        await run.write(nothing)
        return
    async with run.hctx.runtime.sessions() as session:
        latest = await latest_of_change(
            session, run.org_id, event.source, run.host, event.repository, event.number
        )
    if latest is None:
        await refuse(run, event, ManualRunRefused("no_commit", 409, NO_COMMIT))
        return
    config = await read_repo_config(run, event.source, event.repository, latest.sha)
    if config is None:
        await run.write(nothing)  # an invalid .aac.yml: its failed status says why
        return
    try:
        suites = manual_suites(config, event.suite, latest.sha)
    except ManualRunRefused as refused:
        await refuse(run, event, refused)
        return
    ctx = context_of(latest, trigger=MANUAL)
    started = await run.write(lambda s: start_all(s, run.org_id, ctx, suites))
    log.info(
        "/aac run started suites",
        extra={
            "sha": latest.sha,
            "by": event.requested_by,
            "started": [c.suite for c in started],
            "already_running": sorted({s.name for s in suites} - {c.suite for c in started}),
        },
    )


async def start_all(
    session: AsyncSession, org_id: int, ctx: CiContext, suites: list[SuiteConfig]
) -> list[TestCycle]:
    """Open each suite's fresh cycle (database only); the ones opened now."""
    started: list[TestCycle] = []
    for suite in suites:
        cycle, created = await start_suite(session, org_id, ctx, suite)
        if created:
            started.append(cycle)
    return started


async def refuse(run: EventRun, event: RunRequested, refused: ManualRunRefused) -> None:
    """Log why nothing starts, tell the requester on the change, mark the delivery done."""
    log.info("ignored /aac run: %s", refused.code, extra={"suite": event.suite})
    provider = run.provider
    if isinstance(provider, AnswersCommands) and event.requested_by:
        ctx = command_context(run, event)
        await provider.answer_command(ctx, event.requested_by, chat_reply(refused))
    await run.write(nothing)
