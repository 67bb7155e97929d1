"""How python-gitlab is driven: off the event loop, bounded, always timed out, never sleeping
on a rate limit, retrying 5xx briefly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from providers.base import CommitStatus, RateLimited, StatusState, Transient
from providers.context import CiContext
from providers.gitlab.provider import GitlabProvider, GitlabShared
from tests.fakes.gitlab import FakeGitlab, Fault
from tests.providers.conftest import GITLAB_PROJECT, GITLAB_TOKEN, SHA

CTX = CiContext(source="gitlab", repository=GITLAB_PROJECT, sha=SHA)
QUEUED = CommitStatus(state=StatusState.QUEUED, name="aac / tests", description="queued")


async def _ticks_during(call: Callable[[], object]) -> tuple[int, float]:
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        await call()  # type: ignore[misc]
    finally:
        done = True
        await task
    return ticks, time.monotonic() - started


async def test_calls_run_off_the_event_loop(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.inject(Fault("timeout", delay=0.5))
    provider = gitlab_provider()
    ticks, took = await _ticks_during(lambda: provider.update_commit_status(CTX, QUEUED))
    assert took >= 0.5
    assert ticks >= 20, "the event loop was blocked while GitLab answered"


async def test_the_limiter_bounds_concurrent_calls(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.inject(Fault("timeout", delay=0.4, times=2))
    provider = gitlab_provider(shared=GitlabShared(max_threads=1))
    started = time.monotonic()
    await asyncio.gather(provider.bot_login(), provider.get_file(GITLAB_PROJECT, "a", "main"))
    assert time.monotonic() - started >= 0.8  # one thread: the second call waited


async def test_a_timeout_is_always_set(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.inject(Fault("timeout", delay=3.0, times=10))
    provider = gitlab_provider(shared=GitlabShared(timeout_seconds=0.2, max_retries=1))
    started = time.monotonic()
    with pytest.raises(Transient, match="timed out"):
        await provider.update_commit_status(CTX, QUEUED)
    assert time.monotonic() - started < 2.0


async def test_persistent_server_errors_become_transient_after_bounded_retries(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.inject(Fault("server_error", status=503, times=10))
    with pytest.raises(Transient, match="HTTP 503"):
        await gitlab_provider().update_commit_status(CTX, QUEUED)
    assert len(fake_gitlab.requests) == 4  # the call and three retries
    assert fake_gitlab.commit_statuses(GITLAB_PROJECT, SHA) == []


async def test_a_long_retry_after_on_a_5xx_is_not_slept_on(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.inject(Fault("server_error", status=503, server_retry_after=3600))
    started = time.monotonic()
    with pytest.raises(Transient, match="503"):
        await gitlab_provider().update_commit_status(CTX, QUEUED)
    assert time.monotonic() - started < 2.0
    assert len(fake_gitlab.requests) == 1


async def test_an_exhausted_window_reschedules_at_its_reset(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.rate_limit = 2
    fake_gitlab.window_reset = int(time.time()) + 300
    provider = gitlab_provider()
    await provider.update_commit_status(CTX, QUEUED)
    await provider.bot_login()
    with pytest.raises(RateLimited) as caught:
        await provider.get_file(GITLAB_PROJECT, ".aac.yml", "main")
    reset = datetime.now(UTC) + timedelta(seconds=300)
    assert abs((caught.value.retry_at - reset).total_seconds()) < 5
    assert GITLAB_TOKEN not in str(caught.value)


def test_clients_are_built_once_per_instance_and_token(fake_gitlab: FakeGitlab) -> None:
    shared = GitlabShared()
    first = shared.client(fake_gitlab.url, GITLAB_TOKEN)
    assert shared.client(fake_gitlab.url, GITLAB_TOKEN) is first
    assert shared.client(fake_gitlab.url, "glpat-another") is not first
    assert shared.client("https://gitlab.example.com", GITLAB_TOKEN) is not first
    assert first.timeout == shared.timeout_seconds


async def test_any_refusal_with_an_exhausted_window_is_a_rate_limit(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    reset = int(time.time()) + 240
    headers = {"RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)}
    fake_gitlab.inject(Fault("server_error", status=403, headers=headers))
    with pytest.raises(RateLimited) as caught:
        await gitlab_provider().update_commit_status(CTX, QUEUED)
    assert caught.value.retry_at == datetime.fromtimestamp(reset, tz=UTC)
