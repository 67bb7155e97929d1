"""A manual suite started without a chat command: ``aac cycles run`` and
``POST /api/v1/cycles/manual``.

As ``/aac run``: ``.aac.yml`` is read at the commit (no transaction open meanwhile), the suite
must have the ``manual`` trigger, and one write opens its cycle, queues its "queued" status
and, for a ``run`` suite, its testing-node job. The commit's newest cycle an SCM event opened
gives the change it belongs to and where its code comes from (the fork rule): a commit no
such event named is refused, as a report key's cycles (POST /api/v1/cycles) cannot vouch for it.
"""

from __future__ import annotations

import math
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
from providers.base import AuthFailed, NotFound, ProviderError, RateLimited
from providers.factory import NullProvider, resolve_provider
from providers.registry import EventScope
from storage.models import Organization, TestCycle
from storage.types import utcnow

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


# What only the SCM's own events put on a cycle (bot/handlers/change.py, pipeline.py): where
# its code comes from. The CI API cannot set them, so a cycle holding one is the SCM's word.
ORIGIN_KEYS = ("from_fork", "head_repository")
UNKNOWN_COMMIT = (
    "no pull request or pipeline event of {repository} at {sha} is known to the bot, so "
    "whether its code is the repository's own or a fork's is unknown; start it once the bot "
    "has seen the commit (push it to a pull request) or with /aac run on its change"
)


def origin_known(cycle: TestCycle) -> bool:
    """Whether an SCM event said where the cycle's code comes from (the fork rule's facts)."""
    extra = cycle.context_extra or {}
    return any(key in extra for key in ORIGIN_KEYS)


def scm_refusal(exc: ProviderError, repository: str) -> ManualRunRefused:
    """The SCM's failure to read ``.aac.yml`` as the caller's answer: 429 with when to retry,
    409 for credentials it refuses, 503 for an outage, 404 for what it does not have."""
    reading = f"cannot read {CONFIG_PATH} of {repository}: {exc}"
    if isinstance(exc, RateLimited):
        wait = max(1, math.ceil((exc.retry_at - utcnow()).total_seconds()))
        return ManualRunRefused("scm_rate_limited", 429, reading, retry_after=wait)
    if isinstance(exc, AuthFailed):
        return ManualRunRefused("scm_unavailable", 409, reading)
    if isinstance(exc, NotFound):
        return ManualRunRefused("scm_not_found", 404, reading)
    return ManualRunRefused("scm_error", 503, f"{reading}; try again later")


async def start_manual(
    hctx: HandlerContext, org: Organization, request: ManualStart
) -> tuple[TestCycle, bool]:
    """The suite's fresh cycle (or the one still running) and whether it was opened now;
    ManualRunRefused when the commit, its SCM or its suite does not allow it.

    The new cycle takes its change and its code's origin from the newest cycle of the commit
    an SCM event opened (the fork rule); with none, nothing starts (409 ``unknown_commit``):
    with no change there is nobody to ``/aac approve`` a fork's code either.
    """
    runtime = hctx.runtime
    async with runtime.sessions() as session:
        known = await cycles.cycles_for_commit(
            session, org.id, request.source, request.host, request.repository, request.sha
        )
        origin = next((cycle for cycle in known if origin_known(cycle)), None)
        if origin is None:
            raise ManualRunRefused(
                "unknown_commit",
                409,
                UNKNOWN_COMMIT.format(repository=request.repository, sha=request.sha[:12]),
            )
        template = context_of(origin, trigger=MANUAL)
        provider = await resolve_provider(session, runtime.vault, org, template, hctx.shared)
    if isinstance(provider, NullProvider):
        raise ManualRunRefused(
            "scm_unavailable",
            409,
            f"cannot read {CONFIG_PATH} of {request.repository}: {provider.reason}",
        )
    run = EventRun(hctx, _one_transaction(runtime), EventScope(org, request.host), provider)
    try:
        config = await read_repo_config(run, request.source, request.repository, request.sha)
    except ProviderError as exc:
        raise scm_refusal(exc, request.repository) from exc
    if config is None:
        raise ManualRunRefused(
            "invalid_config",
            422,
            f"{CONFIG_PATH} at {request.sha[:12]} is invalid; the commit's failed "
            f"{CONFIG_PATH} status says where",
        )
    [suite] = manual_suites(config, request.suite, request.sha)
    return await run.write(lambda s: start_suite(s, org.id, template, suite))
