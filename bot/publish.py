"""The ``publish_cycle`` job: send a cycle's current state to its SCM.

Which status to show is decided from the cycle alone (queued, in progress, cancelled,
superseded, or the rendered report), so coalesced duplicate jobs publish the newest state.
Every provider call's result is stored on the cycle, and its ids make the next call an update.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from bot.analyse import load_org_cycle, organisation_redactor
from bot.cycle_report import analyse_stored, cycle_context, report_for
from bot.handlers.context import HandlerContext
from bot.links import signed_report_url
from bot.report.check_run import check_name, render_check_run
from bot.report.comment import render_comment
from bot.worker import PermanentJobError
from providers.base import (
    CheckState,
    CommentBody,
    CommitStatus,
    Conclusion,
    ListsRepositoryFiles,
    PublishResult,
    RequestedAction,
)
from providers.factory import resolve_provider
from storage.models import TestCycle
from storage.queue import ClaimedJob

log = logging.getLogger("aac.publish")

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
            state=CheckState.QUEUED, description="Waiting for test results", **common
        )
    if cycle.status == "analysing":
        return CommitStatus(
            state=CheckState.IN_PROGRESS,
            description=f"Analysing {cycle.total:,} test results",
            **common,
        )
    if cycle.status == "cancelled":
        return CommitStatus(
            state=CheckState.COMPLETED,
            conclusion=Conclusion.CANCELLED,
            description="Cancelled: the pull request was closed",
            title="Cancelled",
            summary="The pull request was closed before the results were reported.",
            **common,
        )
    if cycle.status == "superseded":
        return CommitStatus(
            state=CheckState.COMPLETED,
            conclusion=Conclusion.NEUTRAL,
            description="Superseded by a newer commit",
            title="Superseded",
            summary="A newer commit was pushed to this pull request; see its checks.",
            **common,
        )
    return None


def _result_json(result: PublishResult) -> dict[str, Any]:
    return dataclasses.asdict(result)


def _previous(cycle: TestCycle, key: str) -> PublishResult | None:
    stored = (cycle.published or {}).get(key)
    if not isinstance(stored, dict):
        return None
    try:
        return PublishResult(**stored)
    except TypeError:
        return None


class PublishCycle:
    """Job handler bound to the process's runtime and provider state."""

    def __init__(self, hctx: HandlerContext) -> None:
        self.hctx = hctx

    async def run(self, job: ClaimedJob) -> None:
        cycle_id = job.payload.get("cycle_id")
        if not isinstance(cycle_id, str):
            raise PermanentJobError("payload has no cycle_id")
        runtime = self.hctx.runtime
        public_url = runtime.settings.public_url
        details_url = signed_report_url(public_url, runtime.vault.keyring, cycle_id)
        comment: CommentBody | None = None
        async with runtime.sessions() as session:
            cycle, org = await load_org_cycle(session, cycle_id)
            ctx = cycle_context(cycle)
            provider = await resolve_provider(
                session,
                runtime.vault,
                org,
                ctx,
                self.hctx.shared,
                installation_id=ctx.extra.get("installation_id"),
            )
            status = interim_status(cycle, details_url)
            if status is None:
                redactor = organisation_redactor(runtime, org)
                analysis = await analyse_stored(session, cycle, redactor)
                model = report_for(cycle, analysis, public_url)
                # Annotations go on the repository's own paths: list its files when any are due.
                wants_files = bool(model.clusters) and provider.capabilities.annotations
                files = None
                if wants_files and isinstance(provider, ListsRepositoryFiles):
                    files = await provider.repository_files(ctx.repository, ctx.sha)
                rendered = render_check_run(model, provider.limits, files)
                status = dataclasses.replace(
                    rendered,
                    details_url=details_url,
                    external_id=cycle.id,
                    actions=ACTIONS if provider.capabilities.requested_actions else (),
                )
                if ctx.pr is not None and provider.capabilities.comments:
                    comment = render_comment(model, provider.name, provider.limits)
            previous_status = _previous(cycle, "status")
            previous_comment = _previous(cycle, "comment")
        result = await provider.update_commit_status(ctx, status, previous=previous_status)
        await self._store(cycle_id, "status", result)
        if comment is not None:
            posted = await provider.post_comment_to_pr(ctx, comment, previous=previous_comment)
            await self._store(cycle_id, "comment", posted)
        log.info(
            "published",
            extra={"cycle": cycle_id, "state": status.state.value, "attempted": result.attempted},
        )

    async def _store(self, cycle_id: str, key: str, result: PublishResult) -> None:
        async with self.hctx.runtime.sessions.begin() as session:
            cycle = await session.get(TestCycle, cycle_id)
            if cycle is not None:
                cycle.published = {**(cycle.published or {}), key: _result_json(result)}
