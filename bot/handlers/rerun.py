"""Re-run and re-analyse: the check run's buttons, "Re-run" in the checks UI, and
``/aac rerun`` / ``/aac reanalyse`` comments from users with write access.

Three steps, so that no transaction is open while GitHub is asked anything (a re-run is a
paced write, whose write slot is a row update on another connection: inside the job's
transaction on SQLite it waited for the write lock that transaction held). ``plan_rerun``
reads in a short session of its own and then checks the commenter's permission;
``apply_rerun`` re-analyses in the job's transaction and returns the workflow runs to re-run;
``rerun_workflows`` asks GitHub for those once that transaction has committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.events import Rerun
from bot.handlers.context import HandlerContext
from bot.handlers.pull_request import installation_org
from bot.handlers.repo_files import github_provider
from providers.github import GithubProvider
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


@dataclass(frozen=True, slots=True)
class RerunPlan:
    """An allowed request: the organisation whose cycles it targets, and its GitHub."""

    org_id: int
    provider: GithubProvider | None


@dataclass(frozen=True, slots=True)
class RerunDone:
    """What ``apply_rerun`` did, one line per cycle (for logs and tests), and the workflow
    runs still to re-run once its transaction has committed."""

    done: list[str]
    workflow_runs: list[int]


async def plan_rerun(hctx: HandlerContext, action: Rerun) -> RerunPlan | None:
    """None when there is nothing to act on or the requester may not ask for it."""
    async with hctx.runtime.sessions() as session:
        org = await installation_org(session, action.installation_id, action.api_url)
        if org is None:
            return None
        targets = await _targets(session, org.id, action)
        if not targets:
            return None
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
            return None
    return RerunPlan(org.id, provider)


async def apply_rerun(session: AsyncSession, plan: RerunPlan, action: Rerun) -> RerunDone:
    """Re-run the workflow behind each target cycle when there is one, else re-analyse it.

    Only the database changes here, in the caller's transaction; the targets are read again
    in it, since they may have moved on while the permission was checked.
    """
    done: list[str] = []
    runs: list[int] = []
    for cycle in await _targets(session, plan.org_id, action):
        run_id = (cycle.context_extra or {}).get("workflow_run_id")
        if not action.reanalyse and run_id and plan.provider is not None:
            runs.append(int(run_id))
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
    return RerunDone(done, runs)


async def rerun_workflows(plan: RerunPlan, action: Rerun, run_ids: list[int]) -> None:
    """Ask GitHub Actions to re-run ``run_ids``; called after ``apply_rerun`` has committed.

    At least once: a failure here (or a crash after that commit, which leaves the job to be
    claimed again when its lease ends) retries the whole event. The retry re-queues the
    re-analyses (a pending one is coalesced by its unique key; a finished one runs once more,
    which is harmless) and asks for these re-runs again: a run re-run twice is the cost of
    never losing one.
    """
    if plan.provider is None:
        return
    for run_id in run_ids:
        await plan.provider.rerun_workflow(action.repository, run_id)
