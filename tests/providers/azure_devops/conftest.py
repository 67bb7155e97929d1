"""Fixtures for the Azure DevOps provider tests: one fake organisation per session, reset per
test; ``azure_provider`` builds a provider against it (the contract suite reuses it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from providers.azure_devops.provider import AzureDevOpsProvider, AzureShared
from tests.fakes.azure_devops import FakeAzureDevOps, User

ORG = "acme"
PAT = "azdopat-0123456789abcdefghijklmnopqrstuvwxyz0123"
OTHER_PAT = "azdopat-someone-else-9876543210zyxwvutsrqponmlk"
BOT = User("6b1e2c1a-0000-4000-8000-00000000b07e", "aac-bot@acme.example", "aac bot")
SOMEONE = User("5d0f9a2b-0000-4000-8000-0000000050e0", "jamal@acme.example", "Jamal Hartnett")
PROJECT = "Fabrikam"
REPOSITORY = f"{PROJECT}/widgets"
SHA = "0123456789abcdef0123456789abcdef01234567"
SHA2 = "89abcdef0123456789abcdef0123456789abcdef"
PR = 7


@pytest.fixture(scope="session")
def azure_server() -> Iterator[FakeAzureDevOps]:
    fake = FakeAzureDevOps(org=ORG, pats={PAT: BOT, OTHER_PAT: SOMEONE}).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_azure(azure_server: FakeAzureDevOps) -> Iterator[FakeAzureDevOps]:
    """The fake, reset; fails the test if any request body broke the official REST specs."""
    azure_server.reset()
    azure_server.add_pull_request(REPOSITORY, PR, SHA)
    yield azure_server
    assert azure_server.validation_errors == []


@pytest.fixture
def azure_shared() -> AzureShared:
    """Shared clients with no real sleeping between retries."""

    async def no_sleep(seconds: float) -> None:
        return None

    return AzureShared(max_threads=4, timeout_seconds=5.0, sleep=no_sleep)


@pytest.fixture
def azure_provider(
    fake_azure: FakeAzureDevOps, azure_shared: AzureShared
) -> Callable[..., AzureDevOpsProvider]:
    """Build a provider against the fake; keyword overrides go to the constructor."""

    def build(**overrides: Any) -> AzureDevOpsProvider:
        options: dict[str, Any] = {
            "base_url": fake_azure.url,
            "token": PAT,
            "org": ORG,
            "shared": azure_shared,
            "backoff_seconds": 0.0,
            **overrides,
        }
        return AzureDevOpsProvider(**options)

    return build
