"""Runner jobs in the cycle lifecycle: queue one for a ``run`` suite, approve a fork's, close
the cycle when the node reports, and recover from nodes that vanish.

The neutral pull-request handler calls ``queue_runner_jobs`` for each suite with ``run``; the
chat-command handler calls ``approve_runner_job`` for a maintainer's ``/aac approve``.
Functions take the caller's session and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.runner_credentials import CredentialUnavailable, job_clone_url
from config.repo_config import SecretRef, SuiteConfig
from storage import runners
from storage.models import Organization, RunnerJob, TestCycle
from storage.runners import JobState
from storage.types import utcnow

DEFAULT_MAX_ATTEMPTS = 3
# A runner without Docker never takes a job that asks for an image.
DOCKER_LABEL = "docker"


@dataclass(frozen=True, slots=True)
class RunnerPolicy:
    """An organisation's choices for its testing nodes (``settings.runners``)."""

    allow_forks: bool = False  # a fork's code may exfiltrate secrets: off unless chosen
    clone_url: str | None = None  # a mirror, with {repository}
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


def runner_policy(org: Organization) -> RunnerPolicy:
    """The organisation's runner settings, with safe defaults."""
    raw: dict[str, Any] = (org.settings or {}).get("runners") or {}
    return RunnerPolicy(
        allow_forks=bool(raw.get("allow_forks", False)),
        clone_url=raw.get("clone_url"),
        max_attempts=int(raw.get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
    )


def is_from_fork(cycle: TestCycle) -> bool:
    """Whether the cycle's code comes from another repository than the one it targets.

    A pull request whose event did not say where its head lives counts as a fork: running
    unknown code with the organisation's secrets is the mistake that cannot be undone.
    """
    extra = cycle.context_extra or {}
    if "from_fork" in extra:
        return bool(extra["from_fork"])
    head = extra.get("head_repository")
    if not head:
        return cycle.pr is not None
    return str(head).lower() != cycle.repository.lower()


async def queue_runner_jobs(
    session: AsyncSession,
    cycle: TestCycle,
    suite_config: SuiteConfig,
    *,
    from_fork: bool | None = None,
) -> RunnerJob | None:
    """Queue the cycle's ``run`` suite for a testing node (None for a ``report`` suite).

    A fork's code waits for a maintainer's approval when the organisation runs forks at all,
    and is refused otherwise (the cycle completes as cancelled, saying why).
    """
    run = suite_config.run
    if run is None:
        return None
    existing = await runners.job_for_cycle(session, cycle.id)
    if existing is not None:
        return existing
    org = await session.get(Organization, cycle.org_id)
    assert org is not None
    policy = runner_policy(org)
    fork = is_from_fork(cycle) if from_fork is None else from_fork
    problem: str | None = None
    try:
        clone_url = await job_clone_url(session, org, cycle)
    except CredentialUnavailable as exc:
        clone_url, problem = "", str(exc)
    job = RunnerJob(
        org_id=cycle.org_id,
        cycle_id=cycle.id,
        suite=cycle.suite,
        repository=cycle.repository,
        sha=cycle.sha,
        labels=sorted({*run.labels, *([DOCKER_LABEL] if run.image else [])}),
        spec={
            "command": run.command,
            "image": run.image,
            "workdir": run.workdir,
            "env": {k: v for k, v in run.env.items() if isinstance(v, str)},
            "secrets": {k: v.secret for k, v in run.env.items() if isinstance(v, SecretRef)},
            "timeout": run.timeout,
            "results": run.results,
            "clone_url": clone_url,
        },
        from_fork=fork,
        max_attempts=policy.max_attempts,
        state=JobState.QUEUED,
    )
    session.add(job)
    if problem is not None:
        job.state, job.reason, job.finished_at = JobState.FAILED, problem, utcnow()
        await session.flush()
        await _close_cycle(session, cycle, outcome="failure")
    elif fork and not policy.allow_forks:
        job.state, job.finished_at = JobState.REFUSED, utcnow()
        job.reason = (
            "not run: the code comes from a fork and this organisation's testing nodes do not "
            "run forks (a fork could read the job's secrets)"
        )
        await session.flush()
        await _close_cycle(session, cycle, outcome="cancelled")
    elif fork:
        job.state = JobState.AWAITING_APPROVAL
        job.reason = "waiting for a maintainer's `/aac approve`: the code comes from a fork"
    await session.flush()
    return job


async def approve_runner_job(
    session: AsyncSession, cycle_id: str, approved_by: str
) -> RunnerJob | None:
    """A maintainer's ``/aac approve``: the fork's job may run; recorded with who approved.

    None when the cycle has no job waiting for approval (already approved, or none at all).
    """
    job = await runners.job_for_cycle(session, cycle_id)
    if job is None or job.state != JobState.AWAITING_APPROVAL:
        return None
    job.state = JobState.QUEUED
    job.approved_by = approved_by[:200]
    job.approved_at = utcnow()
    job.reason = None
    await session.flush()
    return job


@dataclass(frozen=True, slots=True)
class Report:
    """What a node says at the end of a job."""

    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None  # the node could not run the command (checkout failed, ...)


async def finish_job(session: AsyncSession, job: RunnerJob, report: Report) -> None:
    """Record the end of a job and close its cycle for results (queuing the analysis)."""
    job.finished_at = utcnow()
    job.lease_expires_at = None
    job.exit_code = report.exit_code
    timeout = job.spec.get("timeout")
    if report.cancelled or job.cancel_requested:
        job.state = JobState.CANCELLED
        job.reason = job.reason or "cancelled"
        return  # whoever cancelled it (a newer push, a closed PR) owns the cycle now
    if report.error is not None:
        job.state, job.reason = JobState.FAILED, f"infrastructure error: {report.error[:1000]}"
    elif report.timed_out:
        job.state, job.reason = JobState.TIMED_OUT, f"timed out after {timeout} s; killed"
    else:
        job.state = JobState.DONE
    cycle = await session.get(TestCycle, job.cycle_id)
    if cycle is None:
        return
    if report.error is not None:
        await _close_cycle(session, cycle, outcome="failure")
    elif report.timed_out:
        # Not a plain failure: the report says the node killed it, keeping what was uploaded.
        await _close_cycle(
            session, cycle, outcome=cycles.TIMED_OUT, timeout_seconds=_seconds(timeout)
        )
    else:
        await _close_cycle(session, cycle, outcome=None, exit_code=report.exit_code)


async def expire_vanished(session: AsyncSession) -> int:
    """Re-queue the jobs of nodes that stopped renewing their lease; after the last attempt,
    fail the job as an infrastructure error and close its cycle. Returns how many moved."""
    expired = await runners.expire_leases(session)
    for item in expired:
        if item.failed:
            cycle = await session.get(TestCycle, item.job.cycle_id)
            if cycle is not None:
                await _close_cycle(session, cycle, outcome="failure")
    return len(expired)


def _seconds(timeout: object) -> int | None:
    """The job spec's timeout as whole seconds (at least 1); None when the spec has none."""
    if not isinstance(timeout, int | float) or timeout <= 0:
        return None
    # A sub-second limit still timed out: 0 would read as no limit, and the API refuses it.
    return max(1, round(timeout))


async def _close_cycle(
    session: AsyncSession,
    cycle: TestCycle,
    *,
    outcome: str | None,
    exit_code: int | None = None,
    timeout_seconds: int | None = None,
) -> None:
    if cycle.status == "collecting":
        await cycles.complete_cycle(
            session, cycle, outcome=outcome, exit_code=exit_code, timeout_seconds=timeout_seconds
        )
