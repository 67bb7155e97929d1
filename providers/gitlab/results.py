"""A GitLab pipeline's results as the core takes them: the test report's cases, or the JUnit
files inside its jobs' artifact archives when the report is empty. Pure functions."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

from providers.base import CaseOutcome, ReportedCase, ResultFileBlob, TooLarge

# GitLab's test case statuses (Gitlab::Ci::Reports::TestCase::STATUS_TYPES).
_OUTCOMES = {
    "success": CaseOutcome.PASSED,
    "failed": CaseOutcome.FAILED,
    "error": CaseOutcome.ERROR,
    "skipped": CaseOutcome.SKIPPED,
}


def report_cases(report: Mapping[str, Any]) -> tuple[ReportedCase, ...]:
    """Every case of ``GET /projects/:id/pipelines/:pipeline_id/test_report``."""
    cases: list[ReportedCase] = []
    for suite in report.get("test_suites") or ():
        suite_name = str(suite.get("name") or "")
        for case in suite.get("test_cases") or ():
            duration = case.get("execution_time")
            cases.append(
                ReportedCase(
                    suite=suite_name,
                    name=str(case.get("name") or ""),
                    classname=str(case.get("classname") or ""),
                    outcome=_OUTCOMES.get(str(case.get("status")), CaseOutcome.ERROR),
                    duration_seconds=float(duration) if duration is not None else None,
                    message=_text(case.get("system_output")),
                    trace=_text(case.get("stack_trace")),
                    file=_text(case.get("file")),
                )
            )
    return tuple(cases)


def summary_count(summary: Mapping[str, Any]) -> int:
    """How many cases ``test_report_summary`` says the pipeline reported."""
    total = summary.get("total") or {}
    return int(total.get("count") or 0)


def junit_jobs(jobs: Iterable[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """(job id, job name) of the jobs that uploaded a JUnit report and an archive to read it
    from: the REST API serves only the archive (``artifacts:paths``), not the report itself."""
    found: list[tuple[int, str]] = []
    for job in jobs:
        types = {str(a.get("file_type")) for a in job.get("artifacts") or ()}
        if "junit" in types and "archive" in types:
            found.append((int(job["id"]), str(job.get("name") or job["id"])))
    return found


def xml_files(archive: bytes, *, job_name: str, max_bytes: int) -> tuple[ResultFileBlob, ...]:
    """The ``.xml`` files of a job's artifacts zip, named ``<job>/<path>``; an entry larger than
    ``max_bytes`` once inflated raises TooLarge (sizes are checked while reading, so a
    zip that lies about them cannot inflate past the bound)."""
    blobs: list[ResultFileBlob] = []
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            for info in zipped.infolist():
                if info.is_dir() or not info.filename.lower().endswith(".xml"):
                    continue
                if info.file_size > max_bytes:
                    raise TooLarge(f"{info.filename} of job {job_name} exceeds {max_bytes:,} bytes")
                with zipped.open(info) as entry:
                    content = entry.read(max_bytes + 1)
                if len(content) > max_bytes:
                    raise TooLarge(f"{info.filename} of job {job_name} exceeds {max_bytes:,} bytes")
                blobs.append(ResultFileBlob(name=f"{job_name}/{info.filename}", content=content))
    except zipfile.BadZipFile:
        return ()
    return tuple(blobs)


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
