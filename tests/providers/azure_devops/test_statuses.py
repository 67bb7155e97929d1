"""PR statuses bound to the head commit's iteration, and commit statuses outside a PR."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from providers.azure_devops.provider import AzureDevOpsProvider, status_state
from providers.base import CommitStatus, Conclusion, StatusState
from providers.context import CiContext
from tests.fakes.azure_devops import FakeAzureDevOps
from tests.providers.azure_devops.conftest import PR, REPOSITORY, SHA, SHA2

CTX = CiContext(source="azure", repository=REPOSITORY, sha=SHA, pr=PR, suite="tests")
REPORT = "https://aac.example/cycles/42"


def _status(state: StatusState, conclusion: Conclusion | None = None) -> CommitStatus:
    return CommitStatus(
        state=state,
        name="aac / tests",
        description=f"{state}",
        conclusion=conclusion,
        details_url=REPORT,
    )


async def test_pr_status_moves_from_pending_to_succeeded_on_the_head_iteration(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    queued = await provider.update_commit_status(CTX, _status(StatusState.QUEUED))
    running = await provider.update_commit_status(
        CTX, _status(StatusState.IN_PROGRESS), previous=queued
    )
    done = await provider.update_commit_status(
        CTX, _status(StatusState.COMPLETED, Conclusion.SUCCESS), previous=running
    )

    statuses = fake_azure.pr_statuses[(REPOSITORY.lower(), PR)]
    assert [s["state"] for s in statuses] == ["pending", "pending", "succeeded"]
    assert {(s["context"]["genre"], s["context"]["name"]) for s in statuses} == {("aac", "tests")}
    assert {s["iterationId"] for s in statuses} == {1}
    assert {s["targetUrl"] for s in statuses} == {REPORT}
    assert done.kind == "pr_status"
    assert done.ids["iteration_id"] == "1"
    # The iteration is looked up once per commit, then remembered in the stored result.
    lookups = [r for r in fake_azure.requests if r.operation == "GetPullRequestIterations"]
    assert len(lookups) == 1


async def test_a_push_binds_the_next_status_to_the_new_iteration(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    first = await provider.update_commit_status(CTX, _status(StatusState.QUEUED))
    fake_azure.push(REPOSITORY, PR, SHA2)
    pushed = CiContext(source="azure", repository=REPOSITORY, sha=SHA2, pr=PR)

    second = await provider.update_commit_status(
        pushed, _status(StatusState.QUEUED), previous=first
    )

    assert second.ids["iteration_id"] == "2"
    assert fake_azure.pr_statuses[(REPOSITORY.lower(), PR)][-1]["iterationId"] == 2


async def test_a_commit_in_no_iteration_gets_a_pr_status_without_one(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    stray = CiContext(source="azure", repository=REPOSITORY, sha="f" * 40, pr=PR)
    result = await azure_provider().update_commit_status(stray, _status(StatusState.QUEUED))

    assert "iteration_id" not in result.ids
    assert fake_azure.pr_statuses[(REPOSITORY.lower(), PR)][-1]["iterationId"] is None


async def test_outside_a_pr_a_commit_status_is_posted(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    ctx = CiContext(source="azure", repository=REPOSITORY, sha=SHA, pr=None)
    result = await azure_provider().update_commit_status(
        ctx, _status(StatusState.COMPLETED, Conclusion.FAILURE)
    )

    (status,) = fake_azure.commit_statuses[(REPOSITORY.lower(), SHA)]
    assert result.kind == "commit_status"
    assert status["state"] == "failed"
    assert status["context"] == {"genre": "aac", "name": "tests"}
    assert (REPOSITORY.lower(), PR) not in fake_azure.pr_statuses


async def test_description_is_clipped_to_the_platform_limit(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    long = CommitStatus(state=StatusState.QUEUED, name="n", description="x" * 5000)
    await provider.update_commit_status(CTX, long)

    sent = fake_azure.pr_statuses[(REPOSITORY.lower(), PR)][-1]["description"]
    assert len(sent) == provider.limits.status_description_chars
    assert sent.endswith("…")


@pytest.mark.parametrize(
    ("state", "conclusion", "expected"),
    [
        (StatusState.QUEUED, None, "pending"),
        (StatusState.IN_PROGRESS, None, "pending"),
        (StatusState.COMPLETED, Conclusion.SUCCESS, "succeeded"),
        (StatusState.COMPLETED, Conclusion.FAILURE, "failed"),
        (StatusState.COMPLETED, Conclusion.ACTION_REQUIRED, "failed"),
        (StatusState.COMPLETED, Conclusion.NEUTRAL, "notApplicable"),
        (StatusState.COMPLETED, Conclusion.SKIPPED, "notApplicable"),
        (StatusState.COMPLETED, Conclusion.CANCELLED, "error"),
        (StatusState.COMPLETED, Conclusion.TIMED_OUT, "error"),
        (StatusState.COMPLETED, None, "error"),
    ],
)
def test_states_map_to_azure_status_states(
    state: StatusState, conclusion: Conclusion | None, expected: str
) -> None:
    assert status_state(CommitStatus(state, "n", "d", conclusion=conclusion)) == expected
