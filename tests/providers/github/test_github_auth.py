"""App JWT, installation token minting and caching, through gidgethub against the fake."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from providers.base import (
    AuthFailed,
    CommitStatus,
    NotFound,
    StatusState,
    Transient,
)
from providers.context import CiContext
from providers.github.auth import AppCredentials, InstallationToken, InstallationTokenCache
from providers.github.errors import InstallationGone
from providers.github.provider import GithubProvider, GithubShared
from tests.fakes.github import FakeGithub, Fault
from tests.providers.conftest import APP_ID, INSTALLATION_ID, REPOSITORY, SHA, _pem_pair

CTX = CiContext(source="github", repository=REPOSITORY, sha=SHA, pr=7)
STATUS = CommitStatus(
    state=StatusState.IN_PROGRESS, name="aac / tests", description="running", external_id="c-1"
)


def _bearers(fake: FakeGithub) -> int:
    return sum(1 for r in fake.requests if r.credential == "installation")


def test_app_jwt_claims(github_app_key: tuple[str, str]) -> None:
    token = AppCredentials(str(APP_ID), github_app_key[0]).jwt()
    claims = jwt.decode(token, github_app_key[1], algorithms=["RS256"])
    now = int(time.time())
    assert claims["iss"] == str(APP_ID)
    assert claims["iat"] <= now - 59  # back-dated for clock skew
    assert claims["exp"] - claims["iat"] <= 600
    assert claims["exp"] > now


def test_private_key_never_in_repr(github_app_key: tuple[str, str]) -> None:
    credentials = AppCredentials(str(APP_ID), github_app_key[0])
    assert "PRIVATE KEY" not in repr(credentials)
    assert "s3cr3t" not in repr(InstallationToken("s3cr3t", datetime.now(UTC)))


async def test_one_mint_serves_many_calls_and_concurrent_jobs(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    first, second = app_provider(), app_provider()  # two jobs, one process
    await first.update_commit_status(CTX, STATUS)
    await asyncio.gather(
        *(p.update_commit_status(CTX, STATUS) for p in (first, second, first, second))
    )
    assert len(fake_github.minted_tokens) == 1
    assert _bearers(fake_github) >= 10


async def test_remint_when_token_nears_expiry(
    fake_github: FakeGithub,
    http_client: httpx.AsyncClient,
    github_app_key: tuple[str, str],
) -> None:
    clock = [datetime.now(UTC)]
    shared = GithubShared(pacing_seconds=0.0, now=lambda: clock[0])
    provider = GithubProvider.for_app(
        app_id=APP_ID,
        private_key=github_app_key[0],
        installation_id=77,
        http=http_client,
        shared=shared,
        api_url=fake_github.url,
    )
    await provider.update_commit_status(CTX, STATUS)
    clock[0] += timedelta(minutes=50)  # fake tokens live an hour: still 10 minutes left
    await provider.update_commit_status(CTX, STATUS)
    assert len(fake_github.minted_tokens) == 1
    clock[0] += timedelta(minutes=6)  # inside the 5-minute refresh margin
    fake_github.token_ttl = timedelta(hours=2)  # the fresh token outlives our skewed clock
    await provider.update_commit_status(CTX, STATUS)
    assert len(fake_github.minted_tokens) == 2


@pytest.mark.parametrize("length", [1, 13, 40, 255, 2000])
async def test_tokens_of_any_length(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub, length: int
) -> None:
    token = ("v1." + "aZ09-_" * 400)[:length]
    fake_github.token_factory = lambda: token
    result = await app_provider().update_commit_status(CTX, STATUS)
    assert result.succeeded
    assert fake_github.minted_tokens == [token]
    assert fake_github.check_runs  # the fake accepted the token for the write


async def test_token_refused_early_is_reminted_once(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider()
    await provider.update_commit_status(CTX, STATUS)
    fake_github.expire_tokens()  # e.g. revoked: our cache still trusts it
    result = await provider.update_commit_status(CTX, STATUS)
    assert result.succeeded
    assert len(fake_github.minted_tokens) == 2
    assert [r.status for r in fake_github.requests].count(401) == 1


async def test_installation_gone_is_not_found(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    with pytest.raises(NotFound, match="installation 999"):
        await app_provider(installation_id=999).update_commit_status(CTX, STATUS)
    assert not fake_github.check_runs


async def test_installation_gone_is_confirmed_and_names_the_app(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    with pytest.raises(InstallationGone) as raised:
        await app_provider(installation_id=999).update_commit_status(CTX, STATUS)
    gone = raised.value
    assert (gone.installation_id, gone.app_id, gone.api_url) == (999, APP_ID, fake_github.url)
    asked = [(r.method, r.path, r.credential, r.status) for r in fake_github.requests]
    assert asked == [
        ("POST", "/app/installations/999/access_tokens", "jwt", 404),
        ("GET", "/app/installations/999", "jwt", 404),
    ]


async def test_a_token_404_for_a_known_installation_is_transient(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    """Replication lag or a glitch: GitHub still describes the installation, so retry."""
    mint = f"/app/installations/{INSTALLATION_ID}/access_tokens"
    fake_github.inject(Fault("not_found", "POST", mint, times=10))
    with pytest.raises(Transient, match="still knows the installation"):
        await app_provider(max_attempts=1).update_commit_status(CTX, STATUS)
    fake_github.faults.clear()
    assert (await app_provider().update_commit_status(CTX, STATUS)).succeeded


async def test_wrong_private_key_is_auth_failed(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    other_key = _pem_pair()[0]
    with pytest.raises(AuthFailed) as raised:
        await app_provider(private_key=other_key).update_commit_status(CTX, STATUS)
    assert "PRIVATE KEY" not in str(raised.value)
    assert fake_github.requests[-1].status == 401


async def test_bad_personal_token_is_auth_failed_without_leaking_it(
    token_provider: Callable[..., GithubProvider],
) -> None:
    with pytest.raises(AuthFailed) as raised:
        await token_provider(token="ghp_not-a-real-token").update_commit_status(CTX, STATUS)
    assert "ghp_not-a-real-token" not in str(raised.value)


async def test_token_cache_mints_once_for_concurrent_waiters() -> None:
    mints = 0

    async def mint() -> InstallationToken:
        nonlocal mints
        mints += 1
        await asyncio.sleep(0.01)
        return InstallationToken(f"t{mints}", datetime.now(UTC) + timedelta(hours=1))

    cache = InstallationTokenCache()
    tokens = await asyncio.gather(*(cache.get("k", mint) for _ in range(5)))
    assert tokens == ["t1"] * 5
    cache.invalidate("k", "stale-other-token")  # not ours: kept
    assert await cache.get("k", mint) == "t1"
    cache.invalidate("k", "t1")
    assert await cache.get("k", mint) == "t2"


async def test_enterprise_server_base_url(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider(api_url=fake_github.ghes_url)
    result = await provider.update_commit_status(CTX, STATUS)
    assert result.succeeded
    assert fake_github.requests
    assert {r.prefix for r in fake_github.requests} == {"/api/v3"}
    paths = [r.path for r in fake_github.requests]
    assert "/app/installations/77/access_tokens" in paths
