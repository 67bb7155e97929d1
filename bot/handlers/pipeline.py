"""A pipeline finished (GitHub workflow run, GitLab pipeline): ingest its results.

No change to the user's CI is needed: the provider's results source fetches what the
pipeline left (GitHub: the artifacts whose names match ``.aac.yml``; GitLab: its test
report), result files are parsed here, stored, and the cycle is completed.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass, field, replace

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.events import PipelineFinished
from bot.handlers.context import EventRun, suite_context
from bot.handlers.repo_files import read_repo_config
from bot.results.errors import ResultFileError
from bot.results.limits import ParseLimits
from bot.results.model import TestCaseResult, TestStatus
from bot.results.parse import parse_results
from bot.results.parsed import ParsedFile
from bot.suite_runs import show_queued
from config.repo_config import SuiteConfig
from providers.base import (
    CaseOutcome,
    CompletesPipelineEvents,
    FetchesPipelineResults,
    PipelineResults,
    ReportedCase,
    ResultFileBlob,
)
from providers.context import CiContext
from storage.models import TestCycle

log = logging.getLogger("aac.handlers.pipeline")

MAX_FILES_PER_ARTIFACT = 2000
# Where a cycle opened from a pipeline keeps the run to re-run (``/aac rerun``); cycles stored
# before SCMs were neutral carry GitHub's name for it.
RERUN_PIPELINE_KEYS = ("rerun_pipeline_id", "workflow_run_id")
# Set on a cycle whose pipeline ``/aac rerun`` asked the SCM to re-run (bot/handlers/rerun.py).
RERUN_ASKED = "rerun_asked"
_OUTCOMES = {
    CaseOutcome.PASSED: TestStatus.PASSED,
    CaseOutcome.FAILED: TestStatus.FAILED,
    CaseOutcome.ERROR: TestStatus.ERRORED,
    CaseOutcome.SKIPPED: TestStatus.SKIPPED,
}

# A finished pipeline's conclusion as its cycle's outcome; GitHub's `timed_out` (a job hit
# its `timeout-minutes`) is reported as a timeout, not as a failure of the tests.
_CYCLE_OUTCOMES = {"success": "success", "cancelled": "cancelled", "timed_out": "timed_out"}


def cycle_outcome(conclusion: str | None) -> str:
    """The outcome a pipeline's cycle closes with; any other conclusion is a failure."""
    return _CYCLE_OUTCOMES.get(conclusion or "", "failure")


@dataclass(slots=True)
class ExtractedFiles:
    parsed: list[ParsedFile] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)


def parse_artifact(
    name: str, zip_bytes: bytes, suite: SuiteConfig, limits: ParseLimits
) -> ExtractedFiles:
    """Parse the result files inside one artifact zip; bad files are reported, not fatal."""
    found = ExtractedFiles()
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except zipfile.BadZipFile:
        found.rejected.append({"name": name, "reason": "artifact is not a zip archive"})
        return found
    members = [m for m in archive.infolist() if not m.is_dir() and suite.wants_file(m.filename)]
    for member in members[:MAX_FILES_PER_ARTIFACT]:
        display = f"{name}/{member.filename}"
        if member.file_size > limits.max_decompressed_bytes:
            found.rejected.append({"name": display, "reason": "file too large"})
            continue
        try:
            with archive.open(member) as handle:
                found.parsed.append(parse_results(handle, filename=display, limits=limits))
        except ResultFileError as exc:
            found.rejected.append({"name": display, "reason": exc.reason})
    return found


def parse_blob(blob: ResultFileBlob, suite: SuiteConfig, limits: ParseLimits) -> ExtractedFiles:
    """One fetched blob for one suite: a zip is opened, a single file parsed if wanted."""
    if blob.archive:
        if not suite.wants_artifact(blob.name):
            return ExtractedFiles()
        return parse_artifact(blob.name, blob.content, suite, limits)
    found = ExtractedFiles()
    if not suite.wants_file(blob.name):
        return found
    try:
        parsed = parse_results(io.BytesIO(blob.content), filename=blob.name, limits=limits)
        found.parsed.append(parsed)
    except ResultFileError as exc:
        found.rejected.append({"name": blob.name, "reason": exc.reason})
    return found


def reported_result(case: ReportedCase) -> TestCaseResult:
    """A case from the SCM's own test report as the parsers would have produced it."""
    failed = case.outcome in (CaseOutcome.FAILED, CaseOutcome.ERROR)
    return TestCaseResult(
        name=case.name,
        classname=case.classname,
        suite=case.suite,
        file=case.file,
        status=_OUTCOMES[case.outcome],
        duration=case.duration_seconds or 0.0,
        message=case.message,
        stack_trace=case.trace if failed else None,
    )


def extract(results: PipelineResults, suite: SuiteConfig, limits: ParseLimits) -> ExtractedFiles:
    """What of a pipeline's results belongs to one suite, parsed (CPU work: run in a thread)."""
    found = ExtractedFiles()
    if results.cases:
        found.parsed.append(
            ParsedFile(
                filename=results.origin or "test_report",
                format=results.origin or "test_report",
                results=[reported_result(case) for case in results.cases],
            )
        )
    for blob in results.files:
        part = parse_blob(blob, suite, limits)
        found.parsed += part.parsed
        found.rejected += part.rejected
    return found


@dataclass(frozen=True, slots=True)
class FetchedRun:
    """A finished pipeline's results, fetched and parsed per suite before any transaction."""

    suites: list[tuple[SuiteConfig, ExtractedFiles]]
    # ``run`` suites triggered by the pipeline: the testing nodes run them (after it, e.g.
    # against what it built), not its artifacts.
    runs: list[SuiteConfig] = field(default_factory=list)


async def ingest(run: EventRun, event: PipelineFinished) -> None:
    """Fetch and parse, then store and complete the suites' cycles in the job's one write."""
    if isinstance(run.provider, CompletesPipelineEvents):
        resolved = await run.provider.resolve_pipeline(event)
        if resolved is None:
            log.info("pipeline run ignored: not one of this SCM's repositories")
            return
        event = resolved
    fetched = await fetch(run, event) or FetchedRun([])
    await run.write(lambda s: store(s, run, fetched, event))


async def fetch(run: EventRun, event: PipelineFinished) -> FetchedRun | None:
    """The pipeline's results for each configured suite that wants some.

    No transaction is open meanwhile: the downloads can take a while, and on SQLite a
    transaction that has written holds the one write lock every webhook intake needs.
    """
    config = await read_repo_config(run, event.source, event.repository, event.sha)
    if config is None:
        return None
    wanted = [s for s in config.suites_for("workflow_run") if s.accepts_workflow(event.name)]
    suites = [s for s in wanted if s.run is None]
    # A cancelled pipeline was stopped on purpose: nothing runs after it.
    runs = [s for s in wanted if s.run is not None and event.conclusion != "cancelled"]
    provider = run.provider
    if not suites or not isinstance(provider, FetchesPipelineResults):
        return FetchedRun([], runs) if runs else None
    results = await provider.pipeline_results(
        event.repository,
        event.pipeline_id,
        lambda name: any(suite.wants_artifact(name) for suite in suites),
    )
    limits = ParseLimits(max_file_bytes=run.hctx.runtime.settings.max_result_file_bytes)
    fetched = FetchedRun([], runs)
    for suite in suites:
        extracted = await anyio.to_thread.run_sync(extract, results, suite, limits)
        if extracted.parsed or extracted.rejected:
            fetched.suites.append((suite, extracted))
    return fetched


async def store(
    session: AsyncSession, run: EventRun, fetched: FetchedRun, event: PipelineFinished
) -> list[TestCycle]:
    """Store the fetched results per suite and complete the cycles (database only)."""
    completed: list[TestCycle] = []
    for suite in fetched.runs:
        await queue_run(session, run, suite, event)
    for suite, extracted in fetched.suites:
        ctx = replace(
            suite_context(
                run,
                event,
                suite.name,
                trigger="workflow_run",
                extra={RERUN_PIPELINE_KEYS[0]: event.pipeline_id},
            ),
            pipeline_id=event.pipeline_id,
            pipeline_url=event.url,
            run_attempt=event.run_attempt,
        )
        cycle = await _cycle_to_fill(session, run.org_id, ctx)
        if cycle is None:
            continue  # this run was already ingested (a redelivery)
        cycle.context_extra = {**(cycle.context_extra or {}), **ctx.extra}
        for parsed in extracted.parsed:
            await cycles.add_results(session, cycle, parsed.filename, parsed.format, parsed.results)
        if extracted.rejected:
            cycle.files = [*cycle.files, *({**r, "rejected": True} for r in extracted.rejected)]
        await cycles.complete_cycle(
            session, cycle, outcome=cycle_outcome(event.conclusion), exit_code=None
        )
        completed.append(cycle)
    return completed


async def _cycle_to_fill(session: AsyncSession, org_id: int, ctx: CiContext) -> TestCycle | None:
    """The cycle a finished pipeline run's results go to; None when they are in already.

    GitHub numbers a re-run's attempts, so its cycle is new. GitLab and Azure DevOps re-run
    under the same pipeline id and attempt: when ``/aac rerun`` saw the SCM do that (the latest
    attempt carries RERUN_ASKED), the run finishing again is the next attempt, a cycle of its
    own that supersedes the first; without the mark it is a redelivery of the first run.
    """
    cycle, _created = await cycles.create_cycle(session, org_id, ctx)
    if cycle.status == "collecting":
        return cycle
    latest = (await cycles.attempts(session, org_id, ctx))[0]  # the one just found
    extra = dict(latest.context_extra or {})
    if not extra.pop(RERUN_ASKED, False):
        return None
    if latest.status == "collecting":
        return latest
    fresh, _created = await cycles.create_cycle(
        session, org_id, replace(ctx, run_attempt=latest.run_attempt + 1)
    )
    if fresh.status != "collecting":
        return None  # two deliveries of the re-run raced: the other filled the next attempt
    latest.context_extra = extra
    latest.superseded_by = latest.superseded_by or fresh.id
    return fresh


async def queue_run(
    session: AsyncSession, run: EventRun, suite: SuiteConfig, event: PipelineFinished
) -> TestCycle:
    """Open the ``run`` suite's cycle for the pipeline's commit and queue it for a testing
    node (once: a redelivered event finds the cycle and its job)."""
    ctx = suite_context(run, event, suite.name, trigger="pipeline_finished")
    if event.from_fork is not None:
        ctx.extra["from_fork"] = event.from_fork
    cycle, created = await cycles.create_cycle(session, run.org_id, ctx)
    if created:
        await show_queued(session, cycle, suite, from_fork=event.from_fork)
    return cycle
