"""A manual suite started without a chat command: ``aac cycles run`` and
``POST /api/v1/cycles/manual``.

As ``/aac run``: ``.aac.yml`` is read at the commit (no transaction open meanwhile), the suite
must have the ``manual`` trigger, and one write opens its cycle, queues its "queued" status
and, for a ``run`` suite, its testing-node job. The commit's latest known cycle, if any, gives
the change it belongs to and where its code comes from (the fork rule).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.handlers.context import EventRun, HandlerContext, Write
from bot.handlers.repo_files import read_repo_config
from bot.manual_runs import MANUAL, ManualRunRefused, manual_suites
from bot.runtime import Runtime
from bot.suite_runs import context_of, start_suite
from config.repo_config import CONFIG_PATH
from providers.context import CiContext
from providers.factory import NullProvider, resolve_provider
from providers.registry import EventScope
from storage.models import Organization, TestCycle

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ManualStart:
    """Which suite to start where: the SCM (``source``, ``host``), repository and commit."""

    source: str
    host: str
    repository: str
    sha: str
    suite: str


def _one_transaction(runtime: Runtime) -> Write:
    async def write(
        apply: Callable[[AsyncSession], Awaitable[T]], *, only_if_done: bool = False
    ) -> T:
        async with runtime.sessions.begin() as session:
            return await apply(session)

    return write


async def start_manual(
    hctx: HandlerContext, org: Organization, request: ManualStart
) -> tuple[TestCycle, bool]:
    """The suite's fresh cycle (or the one still running) and whether it was opened now;
    ManualRunRefused when the SCM cannot be read or the suite may not be started by hand."""
    runtime = hctx.runtime
    async with runtime.sessions() as session:
        known = await cycles.cycles_for_commit(
            session, org.id, request.source, request.host, request.repository, request.sha
        )
        template = (
            context_of(known[0], trigger=MANUAL)
            if known
            else CiContext(
                source=request.source,
                host=request.host,
                repository=request.repository,
                sha=request.sha,
                trigger=MANUAL,
            )
        )
        provider = await resolve_provider(session, runtime.vault, org, template, hctx.shared)
    if isinstance(provider, NullProvider):
        raise ManualRunRefused(
            "scm_unavailable",
            409,
            f"cannot read {CONFIG_PATH} of {request.repository}: {provider.reason}",
        )
    run = EventRun(hctx, _one_transaction(runtime), EventScope(org, request.host), provider)
    config = await read_repo_config(run, request.source, request.repository, request.sha)
    if config is None:
        raise ManualRunRefused(
            "invalid_config",
            422,
            f"{CONFIG_PATH} at {request.sha[:12]} is invalid; the commit's failed "
            f"{CONFIG_PATH} status says where",
        )
    [suite] = manual_suites(config, request.suite, request.sha)
    return await run.write(lambda s: start_suite(s, org.id, template, suite))
