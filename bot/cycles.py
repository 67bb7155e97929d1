"""The test-cycle lifecycle: create (idempotently), add results, complete, supersede, describe.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.links import signed_report_url
from bot.results.model import TestCaseResult, TestStatus
from providers.context import SCM_SOURCES, CiContext
from storage import queue, runners
from storage.models import TestCycle, TestResultRow
from storage.types import utcnow
from storage.vault import Keyring

ANALYSE_JOB = "analyse_cycle"
PUBLISH_JOB = "publish_cycle"
FINAL_STATUSES = frozenset({"done", "infra_error", "cancelled", "superseded"})
UNFINISHED_STATUSES = ("collecting", "analysing")
# Analysed, with a report: a newer commit's cycle supersedes them without changing this.
PUBLISHED_STATUSES = ("done", "infra_error")
# "timed_out": the run was killed at its suite's time limit (a testing node, or a CI saying so).
OUTCOMES = frozenset({"success", "failure", "cancelled", "timed_out"})
TIMED_OUT = "timed_out"
INSERT_BATCH = 2000
# The trigger of the cycles a change's own pushes open (bot/handlers/change.py).
PUSH_TRIGGER = "pull_request"


class CycleError(Exception):
    """A request the cycle's state does not allow (e.g. results for a completed cycle)."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str
    format: str
    tests: int


async def create_cycle(
    session: AsyncSession, org_id: int, ctx: CiContext, *, idempotency_key: str | None = None
) -> tuple[TestCycle, bool]:
    """The cycle for this context: an existing one (same idempotency or natural key) or a new one.

    Returns the cycle and whether it was created now.
    """
    existing = await _find_existing(session, org_id, ctx, idempotency_key)
    if existing is not None:
        return existing, False
    waiting = await find_waiting_cycle(session, org_id, ctx)
    if waiting is not None and ctx.pipeline_id:
        # A webhook opened this cycle (its check run shows "queued"); the pipeline's report
        # fills it instead of starting a second one for the same commit and suite.
        waiting.pipeline_id = ctx.pipeline_id
        waiting.pipeline_url = ctx.pipeline_url or waiting.pipeline_url
        waiting.run_attempt = ctx.run_attempt
        waiting.idempotency_key = waiting.idempotency_key or idempotency_key
        return waiting, False
    cycle = TestCycle(
        org_id=org_id,
        status="collecting",
        source=ctx.source,
        host=ctx.host,
        repository=ctx.repository,
        pr=ctx.pr,
        sha=ctx.sha,
        ref=ctx.ref,
        base_ref=ctx.base_ref,
        pipeline_id=ctx.pipeline_id or "",
        pipeline_url=ctx.pipeline_url,
        run_attempt=ctx.run_attempt,
        suite=ctx.suite,
        trigger=ctx.trigger,
        context_extra=ctx.extra,
        idempotency_key=idempotency_key,
        files=[],
        published={},
    )
    try:
        async with session.begin_nested():
            session.add(cycle)
            await session.flush()
    except IntegrityError:
        # A concurrent request created it first: return theirs.
        existing = await _find_existing(session, org_id, ctx, idempotency_key)
        if existing is None:
            raise
        return existing, False
    await supersede_older(session, cycle)
    return cycle, True


async def open_attempt(
    session: AsyncSession, org_id: int, ctx: CiContext
) -> tuple[TestCycle, bool]:
    """A cycle of ``ctx.suite`` at ``ctx.sha`` that no pipeline fills (a testing node's run,
    a manual start): the one still unfinished, if any, else a new run attempt (created now).

    Every run of a suite at one commit is a cycle of its own, numbered by ``run_attempt`` as
    GitHub numbers a workflow's re-runs: the earlier attempts keep their results, which the
    history reads (the same commit passing and failing is flakiness), and point at the new
    one with ``superseded_by``; the PR's comment moves on to the new one when it publishes.
    """
    bare = replace(ctx, pipeline_id=None, pipeline_url=None)
    earlier = await attempts(session, org_id, bare)
    for cycle in earlier:
        if cycle.status in UNFINISHED_STATUSES:
            return cycle, False
    attempt = earlier[0].run_attempt + 1 if earlier else 1
    cycle, created = await create_cycle(session, org_id, replace(bare, run_attempt=attempt))
    if created:
        for old in earlier:
            old.superseded_by = old.superseded_by or cycle.id
    return cycle, created


async def attempts(session: AsyncSession, org_id: int, ctx: CiContext) -> list[TestCycle]:
    """Every attempt of ``ctx``'s suite at its commit and pipeline run (no pipeline: the runs
    no pipeline fills), newest first."""
    rows = await session.execute(
        select(TestCycle)
        .where(
            *same_change(org_id, ctx.source, ctx.host, ctx.repository),
            TestCycle.sha == ctx.sha,
            TestCycle.suite == ctx.suite,
            TestCycle.pipeline_id == (ctx.pipeline_id or ""),
        )
        .order_by(TestCycle.run_attempt.desc())
    )
    return list(rows.scalars())


async def _find_existing(
    session: AsyncSession, org_id: int, ctx: CiContext, idempotency_key: str | None
) -> TestCycle | None:
    if idempotency_key:
        found = (
            await session.execute(
                select(TestCycle).where(
                    TestCycle.org_id == org_id, TestCycle.idempotency_key == idempotency_key
                )
            )
        ).scalar_one_or_none()
        if found is not None:
            return found
    return (
        await session.execute(
            select(TestCycle).where(
                *same_change(org_id, ctx.source, ctx.host, ctx.repository),
                TestCycle.sha == ctx.sha,
                TestCycle.suite == ctx.suite,
                TestCycle.pipeline_id == (ctx.pipeline_id or ""),
                TestCycle.run_attempt == ctx.run_attempt,
            )
        )
    ).scalar_one_or_none()


def same_change(org_id: int, source: str, host: str, repository: str) -> tuple[Any, ...]:
    """The conditions naming one repository of one SCM host in an organisation: the prefix of
    every cycle lookup by commit or change (a mirror on another SCM is another repository)."""
    return (
        TestCycle.org_id == org_id,
        TestCycle.source == source,
        TestCycle.host == host,
        TestCycle.repository == repository,
    )


async def find_waiting_cycle(
    session: AsyncSession, org_id: int, ctx: CiContext
) -> TestCycle | None:
    """A cycle opened by an SCM event for this commit and suite that no pipeline has claimed."""
    return (
        (
            await session.execute(
                select(TestCycle)
                .where(
                    *same_change(org_id, ctx.source, ctx.host, ctx.repository),
                    TestCycle.sha == ctx.sha,
                    TestCycle.suite == ctx.suite,
                    TestCycle.pipeline_id == "",
                    TestCycle.status == "collecting",
                )
                .order_by(TestCycle.created_at)
            )
        )
        .scalars()
        .first()
    )


async def cycles_for_commit(
    session: AsyncSession, org_id: int, source: str, host: str, repository: str, sha: str
) -> list[TestCycle]:
    """Every cycle of a commit of one SCM host's repository in this organisation, newest
    first."""
    rows = await session.execute(
        select(TestCycle)
        .where(*same_change(org_id, source, host, repository), TestCycle.sha == sha)
        .order_by(TestCycle.created_at.desc())
    )
    return list(rows.scalars())


async def latest_of_change(
    session: AsyncSession, org_id: int, source: str, host: str, repository: str, pr: int
) -> TestCycle | None:
    """The cycle naming the change's latest head commit as the bot last saw it: the newest one
    its own pushes opened (trigger ``pull_request``, first attempt), else its newest cycle.

    Not simply the newest: a re-run or manual start at an older commit, or a CI report whose
    commit is a merge commit (GitLab merged-results pipelines, Azure PR builds), is newer.
    """
    change = (*same_change(org_id, source, host, repository), TestCycle.pr == pr)
    newest = (TestCycle.created_at.desc(), TestCycle.id)
    pushed = await session.execute(
        select(TestCycle)
        .where(*change, TestCycle.trigger == PUSH_TRIGGER, TestCycle.run_attempt == 1)
        .order_by(*newest)
        .limit(1)
    )
    head = pushed.scalars().first()
    if head is not None:
        return head
    rows = await session.execute(select(TestCycle).where(*change).order_by(*newest).limit(1))
    return rows.scalars().first()


async def later_commits(session: AsyncSession, cycle: TestCycle) -> set[str]:
    """The commits of the cycle's change the bot first saw after the cycle's own commit.

    A change's commits are ordered by their first cycle (the order their pushes reached the
    bot): a re-run or manual start at an older commit makes a new cycle there, but the change
    has still moved on to these.
    """
    if cycle.pr is None:
        return set()
    rows = await session.execute(
        select(TestCycle.sha, func.min(TestCycle.created_at))
        .where(
            *same_change(cycle.org_id, cycle.source, cycle.host, cycle.repository),
            TestCycle.pr == cycle.pr,
        )
        .group_by(TestCycle.sha)
    )
    first_seen = {sha: at for sha, at in rows.all()}
    mine = first_seen.get(cycle.sha, cycle.created_at)
    return {sha for sha, at in first_seen.items() if at > mine}


async def supersede_older(session: AsyncSession, cycle: TestCycle) -> list[TestCycle]:
    """Cycles of the same PR and suite on older commits are superseded by ``cycle``.

    Older by ``later_commits``: a new attempt at an old commit (a re-run, a manual start, a
    pipeline re-run) leaves the cycles of the commits pushed after it alone.

    Unfinished ones (collecting, analysing) stop: status ``superseded``, and an update tells
    the PR so (their check run completes as neutral). Finished ones (done, infra_error) keep
    their status, results and published check run: that run is the old commit's result,
    which GitHub keeps on that commit, and their results stay in the history verdicts and
    flakiness are computed from (bot/history.py reads ``done`` cycles). They only record
    ``superseded_by``, which the report page and the API show; the PR's comment moves on to
    the new cycle when it publishes. A cycle already superseded keeps pointing at the cycle
    that superseded it, so the chain leads to the newest.
    """
    if cycle.pr is None:
        return []
    newer = await later_commits(session, cycle)
    rows = await session.execute(
        select(TestCycle).where(
            *same_change(cycle.org_id, cycle.source, cycle.host, cycle.repository),
            TestCycle.pr == cycle.pr,
            TestCycle.suite == cycle.suite,
            TestCycle.sha.not_in([cycle.sha, *newer]),
            TestCycle.superseded_by.is_(None),
            TestCycle.status.in_((*UNFINISHED_STATUSES, *PUBLISHED_STATUSES)),
        )
    )
    older = list(rows.scalars())
    for old in older:
        old.superseded_by = cycle.id
        if old.status in UNFINISHED_STATUSES:
            old.status = "superseded"
            old.completed_at = utcnow()
            if old.source in SCM_SOURCES:
                await queue_publish(session, old)
    # Their testing nodes stop too: a queued job is dropped, a running one killed.
    stopped = [old.id for old in older if old.status == "superseded"]
    await runners.cancel_cycle_jobs(session, stopped, f"superseded by cycle {cycle.id}")
    return older


async def queue_publish(session: AsyncSession, cycle: TestCycle) -> int:
    """Publish the cycle's current state soon; pending duplicates coalesce."""
    return await queue.enqueue(
        session, PUBLISH_JOB, {"cycle_id": cycle.id}, unique_key=f"publish:{cycle.id}"
    )


async def get_cycle(session: AsyncSession, org_id: int, cycle_id: str) -> TestCycle | None:
    """The cycle if it belongs to this organisation; None otherwise (no cross-tenant hints)."""
    if len(cycle_id) > 32:
        return None
    return (
        await session.execute(
            select(TestCycle).where(TestCycle.id == cycle_id, TestCycle.org_id == org_id)
        )
    ).scalar_one_or_none()


async def list_cycles(
    session: AsyncSession,
    org_id: int,
    *,
    repository: str | None = None,
    pr: int | None = None,
    sha: str | None = None,
    limit: int = 50,
) -> list[TestCycle]:
    """The organisation's newest cycles, filtered."""
    query = select(TestCycle).where(TestCycle.org_id == org_id)
    if repository:
        query = query.where(TestCycle.repository == repository)
    if pr is not None:
        query = query.where(TestCycle.pr == pr)
    if sha:
        query = query.where(TestCycle.sha == sha)
    query = query.order_by(TestCycle.created_at.desc(), TestCycle.id).limit(limit)
    return list((await session.execute(query)).scalars())


def ensure_collecting(cycle: TestCycle) -> None:
    """CycleError unless the cycle still accepts results."""
    if cycle.status != "collecting":
        raise CycleError(
            f"cycle {cycle.id} is {cycle.status} and accepts no more results; "
            "start a new cycle (e.g. with a new run attempt)"
        )


async def add_results(
    session: AsyncSession,
    cycle: TestCycle,
    file_name: str,
    file_format: str,
    results: Iterable[TestCaseResult],
    *,
    upload_id: int | None = None,
) -> StoredFile:
    """Store one parsed file's results and add them to the cycle's totals; ``upload_id``
    ties them to the upload they came from (bot/cycle_uploads.py replaces by it)."""
    ensure_collecting(cycle)
    counts: Counter[str] = Counter()
    duration = 0.0
    batch: list[dict[str, Any]] = []
    for result in results:
        counts[result.status.value] += 1
        duration += result.duration
        batch.append({**_row(cycle.id, file_name, result), "upload_id": upload_id})
        if len(batch) >= INSERT_BATCH:
            await session.execute(insert(TestResultRow), batch)
            batch = []
    if batch:
        await session.execute(insert(TestResultRow), batch)
    tests = sum(counts.values())
    cycle.total += tests
    cycle.passed += counts[TestStatus.PASSED]
    cycle.failed += counts[TestStatus.FAILED]
    cycle.errored += counts[TestStatus.ERRORED]
    cycle.skipped += counts[TestStatus.SKIPPED]
    cycle.flaky += counts[TestStatus.FLAKY]
    cycle.duration += duration
    entry: dict[str, Any] = {"name": file_name, "format": file_format, "tests": tests}
    if upload_id is not None:
        entry["upload"] = upload_id
    cycle.files = [*cycle.files, entry]
    return StoredFile(file_name, file_format, tests)


def _row(cycle_id: str, file_name: str, r: TestCaseResult) -> dict[str, Any]:
    return {
        "cycle_id": cycle_id,
        "file_name": file_name,
        "name": r.name,
        "classname": r.classname,
        "test_suite": r.suite,
        "test_file": r.file,
        "line": r.line,
        "status": r.status.value,
        "duration": r.duration,
        "message": r.message,
        "failure_type": r.failure_type,
        "stack_trace": r.stack_trace,
        "stdout_tail": r.stdout_tail,
        "stderr_tail": r.stderr_tail,
        "retries": r.retries,
    }


async def complete_cycle(
    session: AsyncSession,
    cycle: TestCycle,
    *,
    outcome: str | None,
    exit_code: int | None,
    timeout_seconds: int | None = None,
) -> int:
    """Close the cycle for results and queue its analysis and publishing; returns the job id.

    ``timeout_seconds``, the limit a ``timed_out`` run hit, is kept for the report to name.
    """
    ensure_collecting(cycle)
    if outcome is not None and outcome not in OUTCOMES:
        raise CycleError(f"outcome must be one of {', '.join(sorted(OUTCOMES))}")
    if timeout_seconds is not None and outcome != TIMED_OUT:
        raise CycleError(f"timeout_seconds is only for outcome {TIMED_OUT}, not {outcome}")
    if outcome is None and exit_code is not None:
        outcome = "success" if exit_code == 0 else "failure"
    cycle.outcome = outcome
    cycle.exit_code = exit_code
    cycle.timeout_seconds = timeout_seconds
    cycle.status = "analysing"
    cycle.completed_at = utcnow()
    return await queue.enqueue(
        session, ANALYSE_JOB, {"cycle_id": cycle.id}, unique_key=f"analyse:{cycle.id}"
    )


def is_infrastructure_error(cycle: TestCycle) -> bool:
    """No results and a failed outcome: the tests never ran; not '0 tests passed'."""
    return cycle.total == 0 and (cycle.outcome == "failure" or (cycle.exit_code or 0) != 0)


async def load_results(session: AsyncSession, cycle_id: str) -> list[TestCaseResult]:
    """The stored per-test results of a cycle, as the parsers produced them."""
    rows = await session.execute(
        select(TestResultRow).where(TestResultRow.cycle_id == cycle_id).order_by(TestResultRow.id)
    )
    return [
        TestCaseResult(
            name=r.name,
            classname=r.classname,
            suite=r.test_suite,
            file=r.test_file,
            line=r.line,
            status=TestStatus(r.status),
            duration=r.duration,
            message=r.message,
            failure_type=r.failure_type,
            stack_trace=r.stack_trace,
            stdout_tail=r.stdout_tail,
            stderr_tail=r.stderr_tail,
            retries=r.retries,
        )
        for r in rows.scalars()
    ]


def totals(cycle: TestCycle) -> dict[str, int]:
    """The cycle's counts in the API's ``totals`` shape."""
    return {
        "total": cycle.total,
        "passed": cycle.passed,
        "failed": cycle.failed,
        "errored": cycle.errored,
        "skipped": cycle.skipped,
        "flaky": cycle.flaky,
    }


def cycle_json(cycle: TestCycle, public_url: str, keyring: Keyring) -> dict[str, Any]:
    """The cycle as the API returns it; its ``report_url`` is a fresh signed link, which opens
    in a browser (the page refuses unsigned requests without an API key)."""
    api = f"{public_url}/api/v1/cycles/{cycle.id}"
    analysis = cycle.analysis or {}
    return {
        "id": cycle.id,
        "url": api,
        "report_url": signed_report_url(public_url, keyring, cycle.id),
        "upload_url": f"{api}/results",
        "complete_url": f"{api}/complete",
        "status": cycle.status,
        "source": cycle.source,
        "host": cycle.host or None,
        "repository": cycle.repository,
        "pr": cycle.pr,
        "sha": cycle.sha,
        "ref": cycle.ref,
        "base_ref": cycle.base_ref,
        "pipeline_id": cycle.pipeline_id or None,
        "pipeline_url": cycle.pipeline_url,
        "run_attempt": cycle.run_attempt,
        "suite": cycle.suite,
        "trigger": cycle.trigger,
        "outcome": cycle.outcome,
        "exit_code": cycle.exit_code,
        "timeout_seconds": cycle.timeout_seconds,
        "totals": totals(cycle),
        "duration": round(cycle.duration, 3),
        "files": cycle.files,
        "summary": analysis.get("headline"),
        "infrastructure_error": is_infrastructure_error(cycle),
        "published": cycle.published,
        # Set when a newer commit of the PR started the same suite, or the same commit ran it
        # again (the successor's run_attempt tells which); a finished cycle keeps its status
        # and results (its report still describes its own run).
        "superseded_by": cycle.superseded_by,
        "superseded_by_url": (
            f"{public_url}/api/v1/cycles/{cycle.superseded_by}" if cycle.superseded_by else None
        ),
        "created_at": cycle.created_at.isoformat(),
        "completed_at": cycle.completed_at.isoformat() if cycle.completed_at else None,
    }


def publish_failures(published: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(what, why) for each stored publication whose last attempt failed."""
    return [
        (key, str(result.get("reason") or "unknown"))
        for key, result in sorted((published or {}).items())
        if isinstance(result, dict) and result.get("attempted") and not result.get("succeeded")
    ]
