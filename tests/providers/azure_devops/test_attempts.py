"""The pure rule behind a retried build's results: per job and test, its latest attempt."""

from __future__ import annotations

from azure.devops.v7_1.test.models import (
    JobReference,
    PhaseReference,
    PipelineReference,
    StageReference,
)

from providers.azure_devops.attempts import JobAttempt, PublishedRun, job_attempt, latest_cases
from providers.base import CaseOutcome, ReportedCase


def _reference(stage: int, job: int, *, leg: str = "__default") -> PipelineReference:
    return PipelineReference(
        pipeline_id=812,
        stage_reference=StageReference(stage_name="Test", attempt=stage),
        phase_reference=PhaseReference(phase_name="Tests", attempt=job),
        job_reference=JobReference(job_name=leg, attempt=job),
    )


def _case(name: str, outcome: CaseOutcome) -> ReportedCase:
    return ReportedCase(suite="pytest", name=name, classname="tests.api", outcome=outcome)


def test_a_pipeline_reference_names_the_job_and_orders_its_attempts() -> None:
    first = job_attempt(_reference(1, 1))
    assert first == JobAttempt(job=("Test", "Tests", "__default"), attempt=(1, 1, 1))
    # A job retried on its own, then its stage retried: the stage's attempt decides.
    alone, stage = job_attempt(_reference(1, 2)), job_attempt(_reference(2, 1))
    assert [a.attempt for a in (first, alone, stage) if a is not None] == sorted(
        [(1, 1, 1), (1, 2, 2), (2, 1, 1)]
    )
    assert job_attempt(None) is None
    assert job_attempt(PipelineReference(pipeline_id=812)) is None  # nothing of any job


def test_cases_of_one_attempt_all_count_and_an_earlier_attempts_do_not() -> None:
    first = job_attempt(_reference(1, 1))
    second = job_attempt(_reference(2, 2))
    failed, passed = (
        _case("test_create", CaseOutcome.FAILED),
        _case("test_create", CaseOutcome.PASSED),
    )
    runs = [
        PublishedRun(first, (failed,)),
        PublishedRun(second, (passed,)),
        PublishedRun(second, (passed,)),  # the same test published twice in one attempt
        PublishedRun(job_attempt(_reference(1, 1, leg="linux")), (failed,)),  # another job
    ]
    assert latest_cases(runs) == (passed, passed, failed)
