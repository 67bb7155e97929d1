"""The ``analyse_cycle`` job: cluster, judge, ask the LLM, store the analysis, queue publishing.

Network calls (the LLM) happen outside database transactions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import cycles
from bot.analysis.link_hosts import allowed_link_hosts
from bot.analysis.llm import LlmConfig, summarise
from bot.analysis.model import LlmSummary
from bot.analysis.redact import Redactor
from bot.cycle_report import analyse_stored, cycle_context, llm_from_json, llm_to_json, report_for
from bot.cycles import queue_publish
from bot.report.headline import headline
from bot.runtime import Runtime
from bot.worker import PermanentJobError
from providers.context import CiContext
from storage.models import AnalysisCache, GithubApp, Organization, TestCycle
from storage.queue import ClaimedJob
from storage.secret_fields import integration_owner, secrets_for_redaction

log = logging.getLogger("aac.analyse")
T = TypeVar("T")
Announce = Callable[[str], Awaitable[None]]
# The check run stays "queued" until the report is published, unless the model takes longer
# than this to answer: then it goes "in progress" while the model works. Without a model,
# with nothing failed or with the answer cached, the analysis takes milliseconds, and an
# "in progress" write would be pointless and costly: writes to one installation are paced a
# second apart, so it would delay the report it announces by that second.
IN_PROGRESS_AFTER = 1.0


class DbSummaryCache:
    """LLM answers kept in the database by cache key (keys are scoped per organisation)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, key: str) -> LlmSummary | None:
        async with self.sessions() as session:
            row = await session.get(AnalysisCache, key)
            return llm_from_json(row.value) if row is not None else None

    async def put(self, key: str, summary: LlmSummary) -> None:
        async with self.sessions.begin() as session:
            row = await session.get(AnalysisCache, key)
            value: dict[str, Any] = llm_to_json(summary) or {}
            if row is None:
                session.add(AnalysisCache(key=key, value=value))
            else:
                row.value = value


async def organisation_redactor(
    runtime: Runtime, org: Organization, config: LlmConfig | None = None
) -> Redactor:
    """Redacts every vault value that could reach the organisation's output (its integration
    tokens and webhook secrets, the GitHub App's private key and webhook secret) and the LLM
    key, plus credential shapes."""
    config = config or llm_config_for(runtime, org)
    async with runtime.sessions() as session:
        values, unreadable = await secrets_for_redaction(session, runtime.vault, org.id)
    if unreadable:
        log.warning("stored secrets could not be decrypted for redaction", extra={"n": unreadable})
    return Redactor([*values, config.api_key or ""])


async def link_hosts_for(
    session: AsyncSession, runtime: Runtime, org: Organization, ctx: CiContext
) -> frozenset[str]:
    """The hosts the organisation's AI summary may link to (see ``allowed_link_hosts``)."""
    api_urls = (await session.execute(select(GithubApp.api_url))).scalars()
    return allowed_link_hosts(
        public_url=runtime.settings.public_url,
        integrations={p: (i.enabled, i.base_url) for p, i in org.integrations.items()},
        github_app_api_urls=list(api_urls),
        ci_hosts=[*runtime.settings.ci_hosts, *((org.settings or {}).get("ci_hosts") or [])],
        pipeline_url=ctx.pipeline_url,
    )


def llm_config_for(runtime: Runtime, org: Organization) -> LlmConfig:
    """The operator's LLM settings, overridden by the organisation's own (model, key)."""
    base = LlmConfig.from_settings(runtime.settings)
    overrides = (org.settings or {}).get("llm") or {}
    api_key = base.api_key
    integration = org.integrations.get("llm")
    if integration is not None and integration.enabled and integration.token_enc:
        api_key = runtime.vault.decrypt(
            integration.token_enc, integration_owner(org.id, "llm", "token")
        ).reveal()
    return LlmConfig(
        model=overrides.get("model", base.model),
        fallback_models=tuple(overrides.get("fallback_models", base.fallback_models)),
        api_base=(integration.base_url if integration and integration.base_url else base.api_base),
        api_key=api_key,
        timeout=float(overrides.get("timeout", base.timeout)),
        token_budget=int(overrides.get("token_budget", base.token_budget)),
    )


class AnalyseCycle:
    """Job handler bound to a runtime.

    ``announce`` (given a cycle id) shows the cycle as in progress on its SCM; it is called
    when the model has not answered within ``in_progress_after`` seconds.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        announce: Announce | None = None,
        in_progress_after: float = IN_PROGRESS_AFTER,
    ) -> None:
        self.runtime = runtime
        self.cache = DbSummaryCache(runtime.sessions)
        self.announce = announce
        self.in_progress_after = in_progress_after

    async def run(self, job: ClaimedJob) -> None:
        cycle_id = job.payload.get("cycle_id")
        if not isinstance(cycle_id, str):
            raise PermanentJobError("payload has no cycle_id")
        public_url = self.runtime.settings.public_url
        async with self.runtime.sessions() as session:
            cycle = await session.get(TestCycle, cycle_id)
            if cycle is None:
                raise PermanentJobError(f"cycle {cycle_id} no longer exists")
            if cycle.status != "analysing":
                log.info("cycle is %s; nothing to analyse", cycle.status)
                return
            org = await session.get(Organization, cycle.org_id)
            assert org is not None
            config = llm_config_for(self.runtime, org)
            redactor = await organisation_redactor(self.runtime, org, config)
            analysis = await analyse_stored(session, cycle, redactor)
            ctx = cycle_context(cycle)
            hosts = await link_hosts_for(session, self.runtime, org, ctx)
        summarising = summarise(
            analysis.clusters,
            log_tail=None,
            config=config,
            redactor=redactor,
            cache=self.cache,
            allowed_link_hosts=hosts,
            cache_scope=f"org:{org.id}",
        )
        if ctx.publishes:
            outcome = await self._announcing_if_slow(cycle_id, summarising)
        else:
            outcome = await summarising
        log.info(
            "analysis finished",
            extra={"llm": outcome.reason.value, "clusters": len(analysis.clusters)},
        )
        async with self.runtime.sessions.begin() as session:
            cycle = await session.get(TestCycle, cycle_id)
            if cycle is None or cycle.status != "analysing":
                return  # superseded or cancelled meanwhile
            cycle.analysis = {
                "llm": llm_to_json(outcome.summary),
                "llm_note": outcome.note if outcome.summary is None else None,
                "llm_reason": outcome.reason.value,
                "clusters": len(analysis.clusters),
            }
            model = report_for(cycle, analysis, public_url)
            cycle.analysis = {**cycle.analysis, "headline": headline(model, icon=False)}
            cycle.status = "infra_error" if cycles.is_infrastructure_error(cycle) else "done"
            if ctx.publishes:
                await queue_publish(session, cycle)

    async def _announcing_if_slow(self, cycle_id: str, work: Awaitable[T]) -> T:
        """``work``'s result; if it takes longer than ``in_progress_after``, the cycle is shown
        in progress meanwhile, and that update has finished before this returns."""
        task = asyncio.ensure_future(work)
        announcing: asyncio.Task[None] | None = None
        try:
            done, _ = await asyncio.wait({task}, timeout=self.in_progress_after)
            if not done and self.announce is not None:
                announcing = asyncio.create_task(self._announce(cycle_id))
            result = await task
        except BaseException:  # shutdown: stop the model call and the update
            for pending in (task, announcing):
                if pending is not None:
                    pending.cancel()
            raise
        if announcing is not None:
            await announcing
        return result

    async def _announce(self, cycle_id: str) -> None:
        """Best effort: the report follows whether or not "in progress" could be shown."""
        assert self.announce is not None
        try:
            await self.announce(cycle_id)
        except Exception as exc:
            log.warning("could not show the analysis in progress: %s", type(exc).__name__)


async def load_org_cycle(session: AsyncSession, cycle_id: str) -> tuple[TestCycle, Organization]:
    """A cycle and its organisation, or PermanentJobError."""
    cycle = await session.get(TestCycle, cycle_id)
    if cycle is None:
        raise PermanentJobError(f"cycle {cycle_id} no longer exists")
    org = (
        await session.execute(select(Organization).where(Organization.id == cycle.org_id))
    ).scalar_one()
    return cycle, org
