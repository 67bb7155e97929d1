"""The ``publish_cycle`` job: send a cycle's current state to its SCM.

Which status to show is decided from the cycle alone (queued, in progress, cancelled,
superseded, or the rendered report), so coalesced duplicate jobs publish the newest state.
Every provider call's result is stored on the cycle, and its ids make the next call an update.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.analyse import load_org_cycle, organisation_redactor
from bot.cycle_report import analyse_stored, cycle_context, report_for
from bot.handlers.context import HandlerContext
from bot.links import signed_report_url
from bot.report.check_run import check_name, render_check_run
from bot.report.comment import render_comment
from bot.report.model import ReportModel
from bot.worker import PermanentJobError
from providers.base import (
    CiProvider,
    CommentBody,
    CommitStatus,
    Conclusion,
    ListsRepositoryFiles,
    ProviderError,
    PublishResult,
    RequestedAction,
    StatusState,
)
from providers.context import CiContext
from providers.factory import NullProvider, resolve_provider
from storage.models import TestCycle
from storage.queue import ClaimedJob
from storage.write_slots import Hold, WriteSlots

log = logging.getLogger("aac.publish")
# How many of a PR's latest cycles of a suite are searched for the comment they share.
COMMENT_LOOKBACK = 20

ACTIONS = (
    RequestedAction("Re-run", "Run this suite's pipeline again", "aac-rerun"),
    RequestedAction("Re-analyse", "Analyse these results again", "aac-reanalyse"),
)


def interim_status(cycle: TestCycle, details_url: str) -> CommitStatus | None:
    """The status for a cycle that has no report yet, or None once it has one."""
    common: dict[str, Any] = {
        "name": check_name(cycle.suite),
        "details_url": details_url,
        "external_id": cycle.id,
    }
    if cycle.status == "collecting":
        return CommitStatus(
            state=StatusState.QUEUED, description="Waiting for test results", **common
        )
    if cycle.status == "analysing":
        failures = cycle.failed + cycle.errored
        title = (
            f"Analysing {failures:,} failure{'s' if failures != 1 else ''}…"
            if failures
            else f"Analysing {cycle.total:,} test results…"
        )
        return CommitStatus(
            state=StatusState.IN_PROGRESS,
            description=title,
            title=title,
            summary=(
                f"The results are in: {cycle.total:,} tests, {cycle.passed:,} passed, "
                f"{cycle.failed:,} failed, {cycle.errored:,} errored. The report is being "
                "written; this check completes when it is ready."
            ),
            **common,
        )
    if cycle.status == "cancelled":
        return CommitStatus(
            state=StatusState.COMPLETED,
            conclusion=Conclusion.CANCELLED,
            description="Cancelled: the pull request was closed",
            title="Cancelled",
            summary="The pull request was closed before the results were reported.",
            **common,
        )
    # Only a newer commit's cycle sets this status (cycles.supersede_older): a re-run at the
    # same commit leaves the earlier attempt's status, and its check, as they are.
    if cycle.status == "superseded":
        return CommitStatus(
            state=StatusState.COMPLETED,
            conclusion=Conclusion.NEUTRAL,
            description="Superseded by a newer commit",
            title="Superseded",
            summary="A newer commit was pushed to this pull request; see its checks.",
            **common,
        )
    return None


def failed_result(key: str, previous: PublishResult | None, exc: Exception) -> PublishResult:
    """What a provider call that raised leaves stored: the reason, and the ids of what an
    earlier call created, so the next attempt still updates it instead of creating another."""
    # Provider errors never carry secrets; anything else may, so only its class is kept.
    reason = (
        f"{type(exc).__name__}: {exc}" if isinstance(exc, ProviderError) else type(exc).__name__
    )
    return PublishResult(
        attempted=True,
        succeeded=False,
        kind=previous.kind if previous is not None else key,
        ids=dict(previous.ids) if previous is not None else {},
        url=previous.url if previous is not None else None,
        reason=reason,
    )


def _result_json(result: PublishResult) -> dict[str, Any]:
    return dataclasses.asdict(result)


def _previous(cycle: TestCycle, key: str) -> PublishResult | None:
    return _stored((cycle.published or {}).get(key))


def _stored(stored: object) -> PublishResult | None:
    if not isinstance(stored, dict):
        return None
    try:
        return PublishResult(**stored)
    except TypeError:
        return None


@dataclass(frozen=True, slots=True)
class CommentPlan:
    """Whether a cycle writes its PR's sticky comment, and which comment to edit."""

    write: bool
    previous: PublishResult | None = None


async def comment_plan(session: AsyncSession, cycle: TestCycle) -> CommentPlan:
    """One comment per (repository, PR, suite), shared by the cycles of every push.

    The comment to edit is the one this cycle stored, else the one the latest earlier cycle
    of the PR and suite stored: a new push edits it without listing the PR's comments (the
    provider falls back to its marker search if it was deleted). A cycle leaves the comment
    alone once a newer cycle has written it: re-analysing an outdated commit must not replace
    the report of the current one. Nor does a cycle at an older commit (a re-run there) take
    the comment while a commit pushed after it has a cycle of the suite.
    """
    if await _later_commit_has_suite(session, cycle):
        return CommentPlan(write=False)
    rows = await session.execute(
        select(TestCycle.created_at, TestCycle.published)
        .where(
            TestCycle.org_id == cycle.org_id,
            TestCycle.source == cycle.source,
            TestCycle.host == cycle.host,
            TestCycle.repository == cycle.repository,
            TestCycle.pr == cycle.pr,
            TestCycle.suite == cycle.suite,
            TestCycle.id != cycle.id,
        )
        .order_by(TestCycle.created_at.desc())
        .limit(COMMENT_LOOKBACK)
    )
    earlier: PublishResult | None = None
    for created_at, published in rows.all():
        stored = _stored_comment(published)
        if stored is None:
            continue
        if created_at > cycle.created_at:
            return CommentPlan(write=False)
        earlier = stored
        break
    return CommentPlan(write=True, previous=_previous(cycle, "comment") or earlier)


async def _later_commit_has_suite(session: AsyncSession, cycle: TestCycle) -> bool:
    newer = await cycles.later_commits(session, cycle)
    if not newer:
        return False
    found = await session.execute(
        select(TestCycle.id)
        .where(
            *cycles.same_change(cycle.org_id, cycle.source, cycle.host, cycle.repository),
            TestCycle.pr == cycle.pr,
            TestCycle.suite == cycle.suite,
            TestCycle.sha.in_(newer),
        )
        .limit(1)
    )
    return found.first() is not None


def comment_slot_key(cycle: TestCycle) -> str:
    """The write slot shared by every cycle that edits the same PR comment."""
    return repr(
        ("comment", cycle.org_id, cycle.source, cycle.host, cycle.repository, cycle.pr, cycle.suite)
    )


def cycle_slot_key(cycle_id: str) -> str:
    """The write slot every publisher of one cycle takes (distinct from any comment's)."""
    return repr(("publish", cycle_id))


def _stored_comment(published: dict[str, Any] | None) -> PublishResult | None:
    result = _stored((published or {}).get("comment"))
    if result is None or not result.succeeded or not result.ids.get("comment_id"):
        return None
    return result


class PublishCycle:
    """Job handler bound to the process's runtime and provider state."""

    def __init__(self, hctx: HandlerContext) -> None:
        self.hctx = hctx
        self._slots = WriteSlots(hctx.runtime.engine)

    async def run(self, job: ClaimedJob) -> None:
        cycle_id = job.payload.get("cycle_id")
        if not isinstance(cycle_id, str):
            raise PermanentJobError("payload has no cycle_id")
        await self.publish(cycle_id)

    async def announce_analysis(self, cycle_id: str) -> None:
        """Show "in progress" for a cycle whose analysis is still running, nothing else.

        Called by the analysis itself, which waits for it before storing its report, so the
        completed state is published strictly after this one. The status is checked in the
        cycle's write slot (see ``publish``): a cycle cancelled or superseded meanwhile is
        either not announced or completed again by its own publish job, which waits.
        """
        await self.publish(cycle_id, only_if_status="analysing")

    async def publish(self, cycle_id: str, *, only_if_status: str | None = None) -> None:
        """Send the cycle's current state; with ``only_if_status``, only in that state.

        One publisher per cycle at a time in every process (publish jobs and the analysis'
        "in progress"), each reading the cycle once it holds the slot. Otherwise an announce
        that saw "analysing" could land after the job that completed the cancelled cycle,
        leaving its check "in progress" for good; or two publishers that both found no
        check run stored would both create one. The slots are always taken in one order:
        this cycle's, then its PR comment's, then (inside the provider) the installation's.
        """
        async with self._slots.lease(cycle_slot_key(cycle_id), 0.0) as held:
            await self._publish(cycle_id, only_if_status, held)

    async def _publish(self, cycle_id: str, only_if_status: str | None, held: Hold) -> None:
        runtime = self.hctx.runtime
        public_url = runtime.settings.public_url
        details_url = signed_report_url(public_url, runtime.vault.keyring, cycle_id)
        model: ReportModel | None = None
        async with runtime.sessions() as session:
            cycle, org = await load_org_cycle(session, cycle_id)
            if only_if_status is not None and cycle.status != only_if_status:
                return
            ctx = cycle_context(cycle)
            provider = await resolve_provider(session, runtime.vault, org, ctx, self.hctx.shared)
            status = interim_status(cycle, details_url)
            if status is None:
                redactor = await organisation_redactor(runtime, org)
                analysis = await analyse_stored(session, cycle, redactor)
                # The comment's and check run's "full report" links open in a browser too.
                model = report_for(cycle, analysis, public_url, report_url=details_url)
            previous_status = _previous(cycle, "status")
        # Only network from here on, with no session open: on PostgreSQL a session that has
        # read stays "idle in transaction" until it closes, and the tree read can take long.
        comment: CommentBody | None = None
        if model is not None:
            status, comment = await self._render_report(provider, ctx, cycle_id, model, details_url)
        assert status is not None
        # Not sent once the slot's lease is lost: another publisher may be writing meanwhile.
        await self._slots.confirm(held)
        result = await self._sent(
            cycle_id,
            "status",
            previous_status,
            provider.update_commit_status(ctx, status, previous=previous_status),
        )
        if comment is not None:
            # One writer per (PR, suite) in every process: two cycles (or two jobs) publishing
            # at once would otherwise both find no comment and both create one.
            async with self._slots.lease(comment_slot_key(cycle), 0.0) as comment_held:
                async with runtime.sessions() as session:
                    current = await session.get(TestCycle, cycle_id)
                    plan = await comment_plan(session, current or cycle)
                if plan.write:
                    await self._slots.confirm(held)
                    await self._slots.confirm(comment_held)
                    await self._sent(
                        cycle_id,
                        "comment",
                        plan.previous,
                        provider.post_comment_to_pr(ctx, comment, previous=plan.previous),
                    )
        log.info(
            "published",
            extra={"cycle": cycle_id, "state": status.state.value, "attempted": result.attempted},
        )

    @staticmethod
    async def _render_report(
        provider: CiProvider | NullProvider,
        ctx: CiContext,
        cycle_id: str,
        model: ReportModel,
        details_url: str,
    ) -> tuple[CommitStatus, CommentBody | None]:
        """The check run (or status) and the PR comment of a report."""
        # Annotations go on the repository's own paths: list its files when any are due.
        wants_files = bool(model.clusters) and provider.capabilities.annotations
        files = None
        if wants_files and isinstance(provider, ListsRepositoryFiles):
            files = await provider.repository_files(ctx.repository, ctx.sha)
        rendered = render_check_run(model, provider.limits, files)
        status = dataclasses.replace(
            rendered,
            details_url=details_url,
            external_id=cycle_id,
            actions=ACTIONS if provider.capabilities.requested_actions else (),
        )
        comment = None
        if ctx.pr is not None and provider.capabilities.comments:
            comment = render_comment(model, provider.name, provider.limits)
        return status, comment

    async def _sent(
        self,
        cycle_id: str,
        key: str,
        previous: PublishResult | None,
        call: Coroutine[Any, Any, PublishResult],
    ) -> PublishResult:
        """``call``'s result, stored; a call that raises stores why and raises on (the worker
        decides from the error's class whether to retry)."""
        try:
            result = await call
        except Exception as exc:
            await self._store(cycle_id, key, failed_result(key, previous, exc))
            raise
        await self._store(cycle_id, key, result)
        return result

    async def _store(self, cycle_id: str, key: str, result: PublishResult) -> None:
        """Merge ``result`` into what the cycle has published, losing no other entry: the row
        is read locked (PostgreSQL; SQLite serialises writers anyway) and merged freshly."""
        async with self.hctx.runtime.sessions.begin() as session:
            cycle = await session.get(
                TestCycle, cycle_id, with_for_update=True, populate_existing=True
            )
            if cycle is not None:
                cycle.published = {**(cycle.published or {}), key: _result_json(result)}
