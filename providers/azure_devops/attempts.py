"""Which of a build's test results count when some of its jobs ran more than once.

Retrying a stage (``/aac rerun``, Azure's "Rerun failed jobs") runs its failed jobs again under
the same build id, and their new test runs sit beside the first attempt's under the build's URI.
Each run's ``pipelineReference`` names the stage, phase and job that published it and which
attempt of each (the agent's ``PublishTestResults`` sets them), so per job and per test the
results of the latest attempt that ran the test are kept: a retried job's new runs replace its
old ones, and the jobs that were not retried keep theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from providers.base import ReportedCase

# (stage, phase, job) names, and their attempts in that order: a later retry sorts higher.
JobKey = tuple[str, str, str]
Attempt = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class JobAttempt:
    """The job a test run was published from, and which attempt of it."""

    job: JobKey
    attempt: Attempt


@dataclass(frozen=True, slots=True)
class PublishedRun:
    """One test run's cases, with the job attempt that published it (None when unknown)."""

    origin: JobAttempt | None
    cases: tuple[ReportedCase, ...]


def job_attempt(pipeline_reference: Any) -> JobAttempt | None:
    """A run's ``PipelineReference`` (an SDK model) as its job attempt; None when it has none.

    A run created through the REST API without one (a third-party publisher) says nothing of
    attempts, so nothing is dropped for it: keeping only the newest run per title would drop
    real results, as one build often publishes several runs under one title (matrix legs,
    configurations), and 7.1 gives the attempt wherever Azure Pipelines published the run.
    """
    if pipeline_reference is None:
        return None
    stage = pipeline_reference.stage_reference
    phase = pipeline_reference.phase_reference
    job = pipeline_reference.job_reference
    if stage is None and phase is None and job is None:
        return None
    return JobAttempt(
        job=(
            _text(stage, "stage_name"),
            _text(phase, "phase_name"),
            _text(job, "job_name"),
        ),
        attempt=(_number(stage), _number(phase), _number(job)),
    )


def _text(ref: Any, field: str) -> str:
    return str(getattr(ref, field, None) or "")


def _number(ref: Any) -> int:
    return int(getattr(ref, "attempt", None) or 0)


def latest_cases(runs: Sequence[PublishedRun]) -> tuple[ReportedCase, ...]:
    """Every case of ``runs`` in order, less those a later attempt of the same job ran again."""
    latest: dict[tuple[JobKey, str, str], Attempt] = {}
    for run in runs:
        if run.origin is None:
            continue
        for case in run.cases:
            key = (run.origin.job, case.classname, case.name)
            latest[key] = max(latest.get(key, run.origin.attempt), run.origin.attempt)
    return tuple(
        case
        for run in runs
        for case in run.cases
        if run.origin is None
        or latest[(run.origin.job, case.classname, case.name)] == run.origin.attempt
    )
