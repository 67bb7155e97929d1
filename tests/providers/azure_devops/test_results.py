"""A build's published test results through the Test Results API, every page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from providers.azure_devops.provider import AzureDevOpsProvider, AzureShared
from providers.azure_devops.results import outcome
from providers.base import CaseOutcome, PipelineResults
from tests.fakes.azure_devops import FakeAzureDevOps
from tests.providers.azure_devops.conftest import PAT, PROJECT, REPOSITORY

BUILD = 2727068


def _results(count: int, failing: int = 0) -> list[dict[str, object]]:
    return [
        {
            "automatedTestName": f"Widgets.Tests.CartTests.case_{i}",
            "testCaseTitle": f"case_{i}",
            "outcome": "Failed" if i < failing else "Passed",
            "durationInMs": 1500.0,
            "errorMessage": "Assert.Equal() Failure" if i < failing else None,
            "stackTrace": "at CartTests.case_0() in Cart.cs:line 12" if i < failing else None,
        }
        for i in range(count)
    ]


async def test_every_run_and_every_page_of_results_becomes_a_case(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    fake_azure.add_test_run(PROJECT, BUILD, "unit", _results(5, failing=1))
    fake_azure.add_test_run(PROJECT, BUILD, "integration", _results(2))
    fake_azure.add_test_run(PROJECT, BUILD + 1, "another build", _results(3))

    results = await azure_provider(results_page_size=2).pipeline_results(REPOSITORY, BUILD)

    assert results.origin == "test_results"
    assert [c.suite for c in results.cases] == ["unit"] * 5 + ["integration"] * 2
    first = results.cases[0]
    assert (first.classname, first.name, first.outcome) == (
        "Widgets.Tests.CartTests",
        "case_0",
        CaseOutcome.FAILED,
    )
    assert first.duration_seconds == 1.5
    assert first.message == "Assert.Equal() Failure"
    assert first.trace is not None
    pages = [r.query.get("$skip") for r in fake_azure.requests if r.operation == "GetTestResults"]
    assert pages == ["0", "2", "4", "0", "2"]


async def test_a_build_without_test_runs_has_no_cases(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    assert (await azure_provider().pipeline_results(REPOSITORY, BUILD)).cases == ()


def test_outcomes_map_to_neutral_ones() -> None:
    assert outcome("Passed") is CaseOutcome.PASSED
    assert outcome("Failed") is CaseOutcome.FAILED
    assert outcome("Timeout") is CaseOutcome.ERROR
    assert outcome("Aborted") is CaseOutcome.ERROR
    assert outcome("NotExecuted") is CaseOutcome.SKIPPED
    assert outcome(None) is CaseOutcome.SKIPPED


def test_evidence_the_sdks_run_query_drops_its_continuation_token(
    fake_azure: FakeAzureDevOps,
) -> None:
    """Why results.py pages with $skip/$top: query_test_runs returns a plain list, and the
    x-ms-continuationtoken header the service sends for the next page is lost."""
    for i in range(150):
        fake_azure.add_test_run(PROJECT, BUILD, f"run {i}", [])
    test_client = AzureShared().clients(fake_azure.url, PAT).test
    now = datetime.now(UTC)
    runs = test_client.query_test_runs(
        PROJECT, now - timedelta(days=1), now, build_ids=[BUILD], top=100
    )

    (query,) = [r for r in fake_azure.requests if "minLastUpdatedDate" in r.query]
    assert query.status == 200
    assert isinstance(runs, list)
    assert len(runs) == 100  # the other 50 are behind a token the caller never sees


def _case(name: str, outcome: str) -> dict[str, object]:
    return {
        "automatedTestName": f"Widgets.Tests.CartTests.{name}",
        "testCaseTitle": name,
        "outcome": outcome,
        "errorMessage": "Assert.Equal() Failure" if outcome == "Failed" else None,
    }


def _outcomes(results: PipelineResults) -> list[tuple[str, str, str]]:
    return [(c.suite, c.name, c.outcome.value) for c in results.cases]


def _pytest_run(
    fake_azure: FakeAzureDevOps,
    cases: list[dict[str, object]],
    *,
    name: str = "pytest",
    job: str = "__default",
) -> None:
    """A run published by the Test stage's "Tests" job (at the stage's current attempt)."""
    fake_azure.add_test_run(PROJECT, BUILD, name, cases, stage="Test", phase="Tests", job=job)


async def _retried_build(
    provider: AzureDevOpsProvider, fake_azure: FakeAzureDevOps, *, matrix: bool = False
) -> None:
    """Build BUILD: its Build stage passed ("lint"), its Test stage failed ("pytest", one leg
    per matrix entry when ``matrix``), and /aac rerun retried the Test stage."""
    stages = {"Build": "succeeded", "Test": "failed"}
    fake_azure.add_build(REPOSITORY, BUILD, source_version="f" * 40, result="failed", stages=stages)
    fake_azure.add_test_run(PROJECT, BUILD, "lint", [_case("lint", "Passed")], stage="Build")
    legs = ("linux", "windows") if matrix else ("__default",)
    for leg in legs:
        _pytest_run(fake_azure, [_case("create", "Failed"), _case("list", "Passed")], job=leg)
    await provider.rerun_pipeline(REPOSITORY, str(BUILD))
    assert fake_azure.stage_retries == [(PROJECT, BUILD, "Test")]


async def test_a_retried_jobs_new_run_replaces_its_first_attempts_run(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    await _retried_build(provider, fake_azure)
    _pytest_run(fake_azure, [_case("create", "Passed"), _case("list", "Passed")])
    fake_azure.finish_stage(PROJECT, BUILD, "Test", "succeeded")

    results = await provider.pipeline_results(REPOSITORY, str(BUILD))

    assert _outcomes(results) == [
        ("lint", "lint", "passed"),  # the stage not retried keeps its run
        ("pytest", "create", "passed"),
        ("pytest", "list", "passed"),
    ]
    [listed] = [r for r in fake_azure.requests if r.operation == "GetTestRuns"]
    assert listed.query["includeRunDetails"] == "true"  # else no pipelineReference


async def test_only_the_matrix_leg_that_ran_again_is_replaced(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    await _retried_build(provider, fake_azure, matrix=True)
    # Retrying the stage re-runs its failed jobs: here only the Windows leg had failed for
    # real; its run is titled with the attempt, as some pipelines do.
    passing = [_case("create", "Passed"), _case("list", "Passed")]
    _pytest_run(fake_azure, passing, name="pytest (attempt 2)", job="windows")
    fake_azure.finish_stage(PROJECT, BUILD, "Test", "failed")

    results = await provider.pipeline_results(REPOSITORY, str(BUILD))

    assert _outcomes(results) == [
        ("lint", "lint", "passed"),
        ("pytest", "create", "failed"),  # linux, attempt 1: not run again
        ("pytest", "list", "passed"),
        ("pytest (attempt 2)", "create", "passed"),
        ("pytest (attempt 2)", "list", "passed"),
    ]


async def test_a_retry_that_ran_only_the_failed_test_keeps_the_others_first_results(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    await _retried_build(provider, fake_azure)
    _pytest_run(fake_azure, [_case("create", "Failed")])  # it re-runs only what failed
    fake_azure.finish_stage(PROJECT, BUILD, "Test", "failed")

    results = await provider.pipeline_results(REPOSITORY, str(BUILD))

    assert _outcomes(results) == [
        ("lint", "lint", "passed"),
        ("pytest", "list", "passed"),  # its latest attempt is still the first
        ("pytest", "create", "failed"),
    ]
    [failed] = [c for c in results.cases if c.outcome is CaseOutcome.FAILED]
    assert failed.message == "Assert.Equal() Failure"


async def test_runs_without_a_pipeline_reference_all_count(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    # Runs created through the REST API by another publisher say nothing of attempts; two of
    # the same title may be two configurations, so neither is dropped.
    fake_azure.add_test_run(PROJECT, BUILD, "ui", [_case("login", "Failed")], stage=None)
    fake_azure.add_test_run(PROJECT, BUILD, "ui", [_case("login", "Passed")], stage=None)

    results = await azure_provider().pipeline_results(REPOSITORY, str(BUILD))

    assert _outcomes(results) == [("ui", "login", "failed"), ("ui", "login", "passed")]
