"""``/aac rerun`` and refused commands on Azure DevOps: a failed build's failed stages retried
(else a new build of its definition queued) through the SDK's BuildClient, and a reply thread
for a user who may not contribute."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from providers.azure_devops.provider import THREAD_PROPERTY, AzureDevOpsProvider
from providers.base import AnswersRefusedCommands, AuthFailed, NotFound, RerunsPipelines
from providers.context import CiContext
from providers.events import parse_command
from tests.fakes.azure_devops import FakeAzureDevOps, Fault
from tests.providers.azure_devops.conftest import BOT, PR, PROJECT, REPOSITORY, SHA, SOMEONE

CTX = CiContext(source="azure", repository=REPOSITORY, sha=SHA, pr=PR, suite="tests")


async def test_the_failed_stages_of_a_build_are_retried(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    stages = {"Build": "succeeded", "Test": "failed", "Lint": "canceled", "Deploy": "skipped"}
    fake_azure.add_build(REPOSITORY, 812, source_version=SHA, pr=PR, result="failed", stages=stages)
    provider = azure_provider()
    assert isinstance(provider, RerunsPipelines)
    assert await provider.rerun_pipeline(REPOSITORY, "812") is True  # in place: the same build
    assert fake_azure.stage_retries == [(PROJECT, 812, "Test"), (PROJECT, 812, "Lint")]
    bodies = [r.body for r in fake_azure.writes() if r.operation == "UpdateStage"]
    assert bodies == [{"state": "retry", "forceRetryAllJobs": False}] * 2
    assert fake_azure.queued_builds == []
    # Asked again while it runs: nothing more (it is being re-run already, in place).
    assert await provider.rerun_pipeline(REPOSITORY, "812") is True
    assert len(fake_azure.stage_retries) == 2


async def test_a_build_without_failed_stages_is_queued_again_at_the_same_commit(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    fake_azure.add_build(REPOSITORY, 812, source_version="f" * 40, pr=PR, result="failed")
    # Not in place: the new build has an id of its own, and build 812 never finishes again.
    assert await azure_provider().rerun_pipeline(REPOSITORY, "812") is False
    assert fake_azure.stage_retries == []
    [queued] = fake_azure.queued_builds
    assert queued["id"] != 812
    assert queued["definition"]["id"] == 17
    assert (queued["sourceBranch"], queued["sourceVersion"]) == (f"refs/pull/{PR}/merge", "f" * 40)
    assert queued["requestedFor"]["id"] == BOT.id


async def test_a_pat_without_queue_builds_is_told_so(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    fake_azure.add_build(
        REPOSITORY, 812, source_version=SHA, result="failed", stages={"T": "failed"}
    )
    fake_azure.build_queuers.discard(BOT.id)
    with pytest.raises(AuthFailed) as caught:
        await azure_provider().rerun_pipeline(REPOSITORY, "812")
    assert "re-run build 812" in str(caught.value)
    assert "needs Queue builds permissions" in str(caught.value)
    assert fake_azure.stage_retries == []


async def test_a_build_that_is_gone_is_not_found(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    with pytest.raises(NotFound, match="HTTP 404"):
        await azure_provider().rerun_pipeline(REPOSITORY, "4040")


async def test_a_refused_command_gets_a_closed_reply_thread_that_is_no_command(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    assert isinstance(provider, AnswersRefusedCommands)
    await provider.refuse_command(CTX, SOMEONE.id, "reanalyse")
    (thread,) = fake_azure.pr_threads(REPOSITORY, PR)
    reply = thread.comments[0]
    assert reply.author.id == BOT.id
    assert reply.content.startswith(f"@<{SOMEONE.id}> ")
    assert "contribute" in reply.content
    assert "may run `/aac reanalyse` on this pull request" in reply.content
    assert parse_command(reply.content) is None  # its comment event must not be a command
    assert THREAD_PROPERTY not in thread.properties  # never mistaken for a report thread
    assert thread.status == "closed"
    # Without a pull request there is nowhere to reply.
    nowhere = CiContext(source="azure", repository=REPOSITORY, sha=SHA)
    await provider.refuse_command(nowhere, "x", "rerun")
    assert len(fake_azure.pr_threads(REPOSITORY, PR)) == 1


async def test_a_reply_that_failed_is_not_repeated(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    fake_azure.inject(Fault("server_error", method="POST", operation="CreateThread"))
    with pytest.raises(Exception, match="HTTP 503"):
        await azure_provider().refuse_command(CTX, SOMEONE.id, "rerun")
    assert [r.status for r in fake_azure.writes()] == [503]
