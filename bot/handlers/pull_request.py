"""``pull_request``: opened / synchronize / reopened / ready_for_review start the configured
suites with a queued check run at once; closed cancels what is still pending."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.cycles import queue_publish
from bot.events import CancelPullRequestCycles, StartPullRequestCycles
from bot.handlers.context import HandlerContext
from bot.handlers.installation import installation_for_event
from bot.handlers.repo_files import github_provider, read_repo_config
from config.repo_config import RepoConfig
from providers.context import CiContext
from providers.github import GithubProvider
from storage.models import Organization, TestCycle
from storage.types import utcnow

log = logging.getLogger("aac.handlers.pull_request")


async def installation_org(
    session: AsyncSession, installation_id: int | None, api_url: str = ""
) -> Organization | None:
    """The organisation a live installation is linked to, or None (logged). ``api_url``, the
    API the event's repository lives under, picks the host when several have the id."""
    if installation_id is None:
        return None
    row = await installation_for_event(session, installation_id, api_url)
    if row is None or row.org_id is None or row.deleted_at or row.suspended_at:
        log.info(
            "installation is unknown, unlinked or suspended; event ignored",
            extra={"installation": installation_id},
        )
        return None
    return await session.get(Organization, row.org_id)


@dataclass(frozen=True, slots=True)
class RepoAtCommit:
    """What an event needs to act on a repository at a commit."""

    org: Organization
    provider: GithubProvider
    config: RepoConfig


async def repo_at_commit(
    hctx: HandlerContext,
    installation_id: int | None,
    repository: str,
    sha: str,
    api_url: str = "",
) -> RepoAtCommit | None:
    """The installation's organisation, its GitHub provider and ``.aac.yml`` at ``sha``; None
    when any is missing (an invalid ``.aac.yml`` has been reported on the commit).

    Reads in a short session of its own, closed before GitHub is asked for the file: no
    transaction stays open across a network call.
    """
    async with hctx.runtime.sessions() as session:
        org = await installation_org(session, installation_id, api_url)
        if org is None:
            return None
        provider = await github_provider(hctx, session, org, repository, sha, installation_id)
    if provider is None:
        return None
    config = await read_repo_config(hctx, org, provider, repository, sha)
    if config is None:
        return None
    return RepoAtCommit(org, provider, config)


async def start_pull_request_cycles(
    session: AsyncSession, repo: RepoAtCommit, action: StartPullRequestCycles
) -> list[TestCycle]:
    """Open one cycle per configured suite and queue its 'queued' check run (database only:
    ``repo`` was read from GitHub before the caller's transaction began)."""
    org, config = repo.org, repo.config
    suites = config.suites_for("pull_request", draft=action.draft)
    existing = {
        c.suite
        for c in await cycles.cycles_for_commit(session, org.id, action.repository, action.sha)
    }
    opened: list[TestCycle] = []
    for suite in suites:
        if suite.name in existing:
            continue
        ctx = CiContext(
            source="github",
            repository=action.repository,
            sha=action.sha,
            pr=action.pr,
            ref=action.ref,
            base_ref=action.base_ref,
            suite=suite.name,
            trigger="pull_request",
            extra={"installation_id": action.installation_id},
        )
        cycle, created = await cycles.create_cycle(session, org.id, ctx)
        if created:
            opened.append(cycle)
            await queue_publish(session, cycle)
    return opened


async def cancel_pull_request_cycles(
    session: AsyncSession, action: CancelPullRequestCycles
) -> list[TestCycle]:
    """Closed PR: its cycles still collecting or analysing are cancelled (and say so)."""
    org = await installation_org(session, action.installation_id, action.api_url)
    if org is None:
        return []
    rows = await session.execute(
        select(TestCycle).where(
            TestCycle.org_id == org.id,
            TestCycle.repository == action.repository,
            TestCycle.pr == action.pr,
            TestCycle.status.in_(("collecting", "analysing")),
        )
    )
    cancelled = list(rows.scalars())
    for cycle in cancelled:
        cycle.status = "cancelled"
        cycle.completed_at = utcnow()
        await queue_publish(session, cycle)
    return cancelled
