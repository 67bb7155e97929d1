"""Fixtures for the GitHub provider tests: one fake GitHub per session, reset per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from providers.github.provider import GithubProvider, GithubShared
from tests.fakes.github import FakeGithub
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
