"""A build's published test results, from the Test Results API, as ``ReportedCase`` records.

Runs are listed by build URI and results by run, both paged with ``$skip``/``$top``: the SDK's
``query_test_runs`` (the continuation-token variant) returns the deserialised runs and drops
the ``x-ms-continuationtoken`` header, so its later pages cannot be reached through it. Runs
are listed with their details: only then do they carry the ``pipelineReference`` (stage, phase
and job attempts) that tells a retried job's runs from its first attempt's (attempts.py).
"""

from __future__ import annotations

from typing import Any

from providers.azure_devops.attempts import PublishedRun, job_attempt, latest_cases
from providers.base import CaseOutcome, ReportedCase

# Azure's own limits: 1000 results per page without details; runs are listed 100 at a time.
MAX_RESULTS_PAGE = 1000
RUNS_PAGE = 100
_OUTCOMES = {
    "passed": CaseOutcome.PASSED,
    "warning": CaseOutcome.PASSED,
    "failed": CaseOutcome.FAILED,
    "error": CaseOutcome.ERROR,
    "timeout": CaseOutcome.ERROR,
    "aborted": CaseOutcome.ERROR,
    "blocked": CaseOutcome.ERROR,
}


def build_uri(build_id: int) -> str:
    """The artifact URI test runs carry for a build."""
    return f"vstfs:///Build/Build/{build_id}"


def outcome(value: str | None) -> CaseOutcome:
    """Our outcome for Azure's ``TestOutcome``; not run, inconclusive and the like are skipped."""
    return _OUTCOMES.get((value or "").lower(), CaseOutcome.SKIPPED)


def reported_case(run_name: str, result: Any) -> ReportedCase:
    """One ``TestCaseResult`` (an SDK model) as a neutral case."""
    full_name = str(result.automated_test_name or result.test_case_title or "")
    classname, _, short = full_name.rpartition(".")
    title = str(result.test_case_title or short or full_name)
    duration = result.duration_in_ms
    return ReportedCase(
        suite=run_name,
        name=short or title,
        classname=classname,
        outcome=outcome(result.outcome),
        duration_seconds=float(duration) / 1000 if duration is not None else None,
        message=result.error_message or None,
        trace=result.stack_trace or None,
    )


def fetch_build_cases(
    test_client: Any, project: str, build_id: int, page_size: int = MAX_RESULTS_PAGE
) -> tuple[ReportedCase, ...]:
    """The results of ``build_id``'s test runs, each test's from the latest attempt of its job
    that ran it (blocking; run in a worker thread)."""
    page_size = max(1, min(page_size, MAX_RESULTS_PAGE))
    published: list[PublishedRun] = []
    for run in _runs(test_client, project, build_id):
        name = str(run.name or f"run {run.id}")
        cases: list[ReportedCase] = []
        skip = 0
        while True:
            page = test_client.get_test_results(project, run.id, skip=skip, top=page_size) or []
            cases.extend(reported_case(name, r) for r in page)
            if len(page) < page_size:
                break
            skip += len(page)
        published.append(PublishedRun(job_attempt(run.pipeline_reference), tuple(cases)))
    return latest_cases(published)


def _runs(test_client: Any, project: str, build_id: int) -> list[Any]:
    runs: list[Any] = []
    skip = 0
    while True:
        page = (
            test_client.get_test_runs(
                project,
                build_uri=build_uri(build_id),
                include_run_details=True,
                skip=skip,
                top=RUNS_PAGE,
            )
            or []
        )
        runs.extend(page)
        if len(page) < RUNS_PAGE:
            return runs
        skip += len(page)
