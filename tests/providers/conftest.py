"""Fixtures for the GitHub provider tests: one fake GitHub per session, reset per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from providers.github.provider import GithubProvider, GithubShared
from providers.gitlab.provider import GitlabProvider, GitlabShared
from tests.fakes.github import FakeGithub
from tests.fakes.gitlab import DEVELOPER, FakeGitlab
from tests.github_constants import (  # noqa: F401 - re-exported for the provider tests
    APP_ID,
    APP_SLUG,
    BOT_LOGIN,
    INSTALLATION_ID,
    OWNER,
    PAT,
    PAT_LOGIN,
    REPOSITORY,
    _pem_pair,
)

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def fake_github(github_server: FakeGithub) -> Iterator[FakeGithub]:
    """The fake, reset; fails the test if any request body broke GitHub's OpenAPI schema."""
    github_server.reset()
    yield github_server
    assert github_server.validation_errors == []


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
def github_shared() -> GithubShared:
    """Shared state with a short pacing interval so tests stay fast."""
    return GithubShared(pacing_seconds=0.01)


@pytest.fixture
def app_provider(
    fake_github: FakeGithub,
    http_client: httpx.AsyncClient,
    github_shared: GithubShared,
    github_app_key: tuple[str, str],
) -> Callable[..., GithubProvider]:
    """Build an App provider against the fake; keyword overrides go to ``for_app``."""

    def build(**overrides: Any) -> GithubProvider:
        options: dict[str, Any] = {
            "app_id": APP_ID,
            "private_key": github_app_key[0],
            "installation_id": INSTALLATION_ID,
            "http": http_client,
            "shared": github_shared,
            "api_url": fake_github.url,
            "backoff_seconds": 0.0,
            **overrides,
        }
        return GithubProvider.for_app(**options)

    return build


@pytest.fixture
def token_provider(
    fake_github: FakeGithub, http_client: httpx.AsyncClient, github_shared: GithubShared
) -> Callable[..., GithubProvider]:
    """Build a personal-access-token provider against the fake."""

    def build(**overrides: Any) -> GithubProvider:
        options: dict[str, Any] = {
            "token": PAT,
            "http": http_client,
            "shared": github_shared,
            "api_url": fake_github.url,
            "backoff_seconds": 0.0,
            **overrides,
        }
        return GithubProvider.for_token(**options)

    return build


# ---------------------------------------------------------------------------------------
# GitLab: one fake per session, reset per test, with a project the bot may write to
# ---------------------------------------------------------------------------------------
GITLAB_TOKEN = "glpat-" + "Fak3T0k3n" * 2
GITLAB_BOT = "aac-bot"
GITLAB_ORG = "acme"
GITLAB_PROJECT = "acme/platform/widgets"
GITLAB_MR = 5


@pytest.fixture(scope="session")
def gitlab_server() -> Iterator[FakeGitlab]:
    fake = FakeGitlab(tokens={GITLAB_TOKEN: GITLAB_BOT}).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_gitlab(gitlab_server: FakeGitlab) -> FakeGitlab:
    """The fake, reset, holding ``GITLAB_PROJECT`` (the bot a Developer) and MR !5."""
    gitlab_server.reset()
    gitlab_server.add_project(GITLAB_PROJECT, members={GITLAB_BOT: DEVELOPER})
    gitlab_server.add_merge_request(GITLAB_PROJECT, GITLAB_MR)
    return gitlab_server


@pytest.fixture
def gitlab_provider(fake_gitlab: FakeGitlab) -> Callable[..., GitlabProvider]:
    """Build a provider against the fake; keyword overrides go to ``GitlabProvider``."""
    shared = GitlabShared(timeout_seconds=5.0)

    def build(**overrides: Any) -> GitlabProvider:
        options: dict[str, Any] = {
            "base_url": fake_gitlab.url,
            "token": GITLAB_TOKEN,
            "org": GITLAB_ORG,
            "shared": shared,
            **overrides,
        }
        return GitlabProvider(**options)

    return build
