"""Typed errors from one translator: 5xx retried, throttling rescheduled with its reset time,
a bad PAT (401, or 203 with a sign-in page) refused naming the organisation, never the PAT."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from msrest.exceptions import ClientRequestError

from providers.azure_devops.errors import AzureHttpError, throttle_retry_at, translate_error
from providers.azure_devops.provider import AzureDevOpsProvider, AzureShared
from providers.base import (
    AuthFailed,
    CommentBody,
    CommitStatus,
    NotFound,
    RateLimited,
    StatusState,
    Transient,
)
from providers.context import CiContext
from tests.fakes.azure_devops import FakeAzureDevOps, Fault
from tests.providers.azure_devops.conftest import ORG, PAT, PR, REPOSITORY, SHA

CTX = CiContext(source="azure", repository=REPOSITORY, sha=SHA, pr=PR)
QUEUED = CommitStatus(state=StatusState.QUEUED, name="aac / tests", description="queued")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


async def test_5xx_is_retried_and_the_thread_is_created_once(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    fake_azure.inject(Fault("server_error", method="POST", operation="CreateThread", times=2))
    await azure_provider(max_attempts=3).post_comment_to_pr(CTX, CommentBody("tests", "x"))

    assert len(fake_azure.pr_threads(REPOSITORY, PR)) == 1
    creates = [r.status for r in fake_azure.requests if r.operation == "CreateThread"]
    assert creates == [503, 503, 200]


async def test_5xx_that_persists_is_transient(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    fake_azure.inject(
        Fault("server_error", operation="CreatePullRequestStatus", times=5, status=500)
    )
    with pytest.raises(Transient) as caught:
        await azure_provider(max_attempts=2).update_commit_status(CTX, QUEUED)
    assert "HTTP 500" in str(caught.value)
    assert len([r for r in fake_azure.requests if r.operation == "CreatePullRequestStatus"]) == 2


async def test_429_is_rate_limited_until_retry_after(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    fake_azure.inject(Fault("throttled", operation="CreatePullRequestStatus", retry_after=30))
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as caught:
        await azure_provider().update_commit_status(CTX, QUEUED)
    assert before + timedelta(seconds=29) <= caught.value.retry_at <= before + timedelta(seconds=32)
    # Not retried in place: the worker reschedules the job.
    assert len([r for r in fake_azure.requests if r.operation == "CreatePullRequestStatus"]) == 1


async def test_429_without_retry_after_waits_for_the_rate_limit_reset(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    fake_azure.inject(Fault("throttled", operation="CreateThread", retry_after=None, reset_in=300))
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as caught:
        await azure_provider().post_comment_to_pr(CTX, CommentBody("tests", "x"))
    assert (
        before + timedelta(seconds=298) <= caught.value.retry_at <= before + timedelta(seconds=302)
    )


@pytest.mark.parametrize("token", ["wrong-pat-0123456789abcdefghijklmnop"])
async def test_a_bad_pat_is_auth_failed_naming_the_organisation_not_the_pat(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps, token: str
) -> None:
    with pytest.raises(AuthFailed) as caught:
        await azure_provider(token=token).update_commit_status(CTX, QUEUED)
    message = str(caught.value)
    assert "Azure DevOps" in message
    assert ORG in message
    assert "401" in message
    assert token not in message
    assert token not in repr(caught.value.__cause__)
    assert [r.status for r in fake_azure.requests] == [401]  # refused once, never retried


async def test_a_sign_in_page_is_auth_failed(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    await provider.update_commit_status(CTX, QUEUED)  # discovery done, routes cached
    fake_azure.inject(Fault("sign_in_page", operation="CreatePullRequestStatus"))
    with pytest.raises(AuthFailed) as caught:
        await provider.update_commit_status(CTX, QUEUED)
    assert "203" in str(caught.value)
    assert ORG in str(caught.value)
    assert PAT not in str(caught.value)


async def test_a_missing_pull_request_is_not_found(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    gone = CiContext(source="azure", repository=REPOSITORY, sha=SHA, pr=999)
    with pytest.raises(NotFound) as caught:
        await azure_provider().update_commit_status(gone, QUEUED)
    assert "TF401180" in str(caught.value)


def test_translator_maps_transport_failures_and_statuses() -> None:
    def t(exc: BaseException) -> Exception:
        return translate_error(exc, org=ORG, now=NOW, action="do it")

    assert isinstance(t(ClientRequestError("Error occurred in request.")), Transient)
    assert isinstance(t(ConnectionResetError()), Transient)
    assert isinstance(t(AzureHttpError(502, {}, "")), Transient)
    assert isinstance(t(AzureHttpError(403, {}, "no")), AuthFailed)
    assert isinstance(t(AzureHttpError(410, {}, "")), NotFound)
    limited = t(AzureHttpError(429, {"Retry-After": "5"}, "TF400733"))
    assert isinstance(limited, RateLimited)
    assert limited.retry_at == NOW + timedelta(seconds=5)


def test_throttle_retry_at_prefers_retry_after_then_reset_then_a_minute() -> None:
    reset = str(int((NOW + timedelta(minutes=3)).timestamp()))
    assert throttle_retry_at({"retry-after": "7", "x-ratelimit-reset": reset}, now=NOW) == (
        NOW + timedelta(seconds=7)
    )
    assert throttle_retry_at({"x-ratelimit-reset": reset}, now=NOW) == NOW + timedelta(minutes=3)
    assert throttle_retry_at({}, now=NOW) == NOW + timedelta(minutes=1)


def test_only_throttling_headers_are_kept() -> None:
    error = AzureHttpError(429, {"Retry-After": "1", "Set-Cookie": "secret", "X-Other": "x"}, "")
    assert error.headers == {"retry-after": "1"}


async def test_sdk_calls_run_in_bounded_worker_threads() -> None:
    shared = AzureShared(max_threads=2)
    loop_thread = threading.get_ident()
    seen: set[int] = set()
    running = 0
    peak = 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            seen.add(threading.get_ident())
        threading.Event().wait(0.05)
        with lock:
            running -= 1

    import anyio

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(shared.run, call)
    assert loop_thread not in seen
    assert peak == 2


def test_clients_are_built_once_per_organisation_and_pat() -> None:
    shared = AzureShared()
    a = shared.clients("https://dev.azure.com/acme", "pat-1")
    assert shared.clients("https://dev.azure.com/ACME/", "pat-1") is a
    assert shared.clients("https://dev.azure.com/acme", "pat-2") is not a
    assert shared.clients("https://dev.azure.com/other", "pat-1") is not a
    assert a.git.config.connection.timeout == shared.timeout_seconds
