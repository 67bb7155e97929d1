"""Re-run and re-analyse: the check run's buttons, "Re-run" in the checks UI, and
``/aac rerun`` / ``/aac reanalyse`` comments from users with write access."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.events import Rerun
from bot.handlers.context import HandlerContext
from bot.handlers.pull_request import installation_org
from bot.handlers.repo_files import github_provider
from storage import queue
from storage.models import TestCycle

log = logging.getLogger("aac.handlers.rerun")
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


async def _targets(session: AsyncSession, org_id: int, action: Rerun) -> list[TestCycle]:
    query = select(TestCycle).where(
        TestCycle.org_id == org_id, TestCycle.repository == action.repository
    )
    if action.cycle_id:
        query = query.where(TestCycle.id == action.cycle_id)
    elif action.sha:
        query = query.where(TestCycle.sha == action.sha)
    elif action.pr:
        query = query.where(TestCycle.pr == action.pr)
    else:
        return []
    rows = list((await session.execute(query.order_by(TestCycle.created_at.desc()))).scalars())
    latest: dict[str, TestCycle] = {}
    for cycle in rows:
        if cycle.status != "superseded":
            latest.setdefault(cycle.suite, cycle)
    return list(latest.values())


async def handle_rerun(hctx: HandlerContext, session: AsyncSession, action: Rerun) -> list[str]:
    """Re-run the workflow behind each target cycle when there is one, else re-analyse it.

    Returns what was done, one line per cycle (for logs and tests).
    """
    org = await installation_org(session, action.installation_id)
    if org is None:
        return []
    targets = await _targets(session, org.id, action)
    if not targets:
        return []
    provider = await github_provider(
        hctx, session, org, action.repository, targets[0].sha, action.installation_id
    )
    if action.needs_permission_check:
        permission = "none"
        if provider is not None and action.requested_by:
            permission = await provider.collaborator_permission(
                action.repository, action.requested_by
            )
        if permission not in WRITE_PERMISSIONS:
            log.info(
                "ignored /aac command from a user without write access",
                extra={"user": action.requested_by, "permission": permission},
            )
            return []
    done: list[str] = []
    for cycle in targets:
        run_id = (cycle.context_extra or {}).get("workflow_run_id")
        if not action.reanalyse and run_id and provider is not None:
            await provider.rerun_workflow(action.repository, int(run_id))
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
    return done
