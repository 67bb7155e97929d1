"""A build's published test results through the Test Results API, every page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from providers.azure_devops.provider import AzureDevOpsProvider, AzureShared
from providers.azure_devops.results import outcome
from providers.base import CaseOutcome
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
