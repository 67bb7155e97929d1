"""``/aac rerun`` on GitLab: the pipeline's failed jobs retried through python-gitlab, and
GitLab's refusals (403 for a Reporter, 404 for a pipeline that is gone, 429) typed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from providers.base import AuthFailed, NotFound, RateLimited, RerunsPipelines
from providers.gitlab.provider import GitlabProvider
from tests.fakes.gitlab import REPORTER, FakeGitlab, Fault
from tests.providers.conftest import GITLAB_BOT, GITLAB_PROJECT, GITLAB_TOKEN, SHA


async def test_a_pipeline_is_retried_in_place(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    pipeline = fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA)
    provider = gitlab_provider()
    assert isinstance(provider, RerunsPipelines)
    assert await provider.rerun_pipeline(GITLAB_PROJECT, str(pipeline)) is True
    assert fake_gitlab.pipeline_retries == [pipeline]
    assert fake_gitlab.pipelines[pipeline].status == "running"
    [retry] = fake_gitlab.writes()
    assert (retry.method, retry.path, retry.status) == (
        "POST",
        f"/projects/{GITLAB_PROJECT}/pipelines/{pipeline}/retry",
        201,
    )


async def test_a_passed_pipeline_has_nothing_to_retry(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    pipeline = fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA)
    fake_gitlab.pipelines[pipeline].status = "success"
    # GitLab retries only failed and canceled jobs: nothing runs, so nothing is in place.
    assert await gitlab_provider().rerun_pipeline(GITLAB_PROJECT, str(pipeline)) is False
    assert fake_gitlab.pipeline_retries == []
    assert fake_gitlab.writes() == []


async def test_a_reporter_token_is_told_which_role_a_retry_needs(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    pipeline = fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA)
    fake_gitlab.add_member(GITLAB_PROJECT, GITLAB_BOT, REPORTER)
    with pytest.raises(AuthFailed) as caught:
        await gitlab_provider().rerun_pipeline(GITLAB_PROJECT, str(pipeline))
    text = str(caught.value)
    assert f"retry pipeline {pipeline}" in text
    assert "HTTP 403" in text
    assert "Developer role" in text
    assert GITLAB_PROJECT in text
    assert GITLAB_TOKEN not in text
    assert fake_gitlab.pipeline_retries == []


async def test_a_pipeline_that_is_gone_is_not_found(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    with pytest.raises(NotFound, match="HTTP 404"):
        await gitlab_provider().rerun_pipeline(GITLAB_PROJECT, "999999")


async def test_a_throttled_retry_is_rate_limited_not_slept_on(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    pipeline = fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA)
    fake_gitlab.inject(Fault("rate_limit", method="POST", path=r".*/retry", retry_after=600))
    with pytest.raises(RateLimited):
        await gitlab_provider().rerun_pipeline(GITLAB_PROJECT, str(pipeline))
    assert fake_gitlab.pipeline_retries == []
