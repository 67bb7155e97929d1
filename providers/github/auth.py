"""GitHub App authentication: the App JWT and cached installation access tokens.

JWTs come from ``gidgethub.apps.get_jwt`` (RS256 via pyjwt, ``iat`` back-dated 60 s, ``exp``
600 s after it, ``iss`` = app id); installation tokens from ``get_installation_access_token``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import gidgethub
import gidgethub.apps
import httpx
from gidgethub.abc import GitHubAPI

from providers.base import NotFound, ProviderError, Transient
from providers.github.errors import InstallationGone, translate_error

# Refresh this long before GitHub's expires_at, so a token never dies mid-job.
DEFAULT_REFRESH_MARGIN = timedelta(minutes=5)


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the default clock everywhere here)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """A GitHub App's id and private key (PEM). The key never appears in a repr."""

    app_id: str
    private_key: str = field(repr=False)

    def jwt(self) -> str:
        """A fresh App JWT (valid about nine minutes)."""
        return gidgethub.apps.get_jwt(app_id=self.app_id, private_key=self.private_key)


@dataclass(frozen=True, slots=True)
class InstallationToken:
    """An installation access token and when GitHub says it expires."""

    token: str = field(repr=False)
    expires_at: datetime


async def mint_installation_token(
    gh: GitHubAPI,
    credentials: AppCredentials,
    installation_id: int,
    *,
    now: datetime,
    repositories: Sequence[str] | None = None,
    permissions: Mapping[str, str] | None = None,
) -> InstallationToken:
    """Ask GitHub for a new installation token; 401 -> AuthFailed.

    ``repositories`` (names without the owner) and ``permissions`` narrow the token below the
    installation's own grant, e.g. one repository with ``contents: read`` for a testing node.

    A 404 alone is not proof the installation is gone (GitHub's replicas lag behind a new
    installation, and answers glitch): the App asks ``GET /app/installations/{id}``, and only
    a 404 there too is InstallationGone. If GitHub still knows the installation, the token's
    404 is Transient and the caller retries.
    """
    scope: dict[str, Any] = {}
    if repositories is not None:
        scope["repositories"] = list(repositories)
    if permissions is not None:
        scope["permissions"] = dict(permissions)
    try:
        if scope:
            # gidgethub's helper sends no body, so a scoped token is asked for directly.
            response: dict[str, Any] = await gh.post(
                "/app/installations/{installation_id}/access_tokens",
                {"installation_id": installation_id},
                data=scope,
                jwt=credentials.jwt(),
            )
        else:
            response = await gidgethub.apps.get_installation_access_token(
                gh,
                installation_id=str(installation_id),
                app_id=credentials.app_id,
                private_key=credentials.private_key,
            )
    except (gidgethub.HTTPException, httpx.TransportError) as exc:
        error = translate_error(exc, now=now, action="mint installation token")
        if isinstance(error, NotFound):
            error = await _confirm_gone(gh, credentials, installation_id, now=now)
        raise error from exc
    try:
        token = str(response["token"])
        expires_at = datetime.fromisoformat(str(response["expires_at"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError("GitHub returned a malformed installation token response") from exc
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return InstallationToken(token=token, expires_at=expires_at)


async def _confirm_gone(
    gh: GitHubAPI, credentials: AppCredentials, installation_id: int, *, now: datetime
) -> ProviderError:
    """What a 404 on minting means, as the App's own view of the installation says."""
    api_url = str(gh.base_url).rstrip("/")
    try:
        await gh.getitem(
            "/app/installations/{installation_id}",
            {"installation_id": installation_id},
            jwt=credentials.jwt(),
        )
    except (gidgethub.HTTPException, httpx.TransportError) as exc:
        error = translate_error(exc, now=now, action=f"read installation {installation_id}")
        if isinstance(error, NotFound):
            return InstallationGone(
                f"GitHub installation {installation_id} is gone (uninstalled?)",
                installation_id,
                app_id=int(credentials.app_id),
                api_url=api_url,
            )
        return error
    return Transient(
        f"GitHub refused a token for installation {installation_id} (404) but still knows "
        "the installation; will retry"
    )


class InstallationTokenCache:
    """Installation tokens in memory, one per key, reused until shortly before they expire.

    One instance per process: every job for an installation shares its token, and
    concurrent jobs wait for a single mint instead of each minting their own.
    """

    def __init__(
        self,
        *,
        refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._tokens: dict[Hashable, InstallationToken] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}

    async def get(self, key: Hashable, mint: Callable[[], Awaitable[InstallationToken]]) -> str:
        """The cached token for ``key``, minting a new one with ``mint`` when due."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and self._clock() < cached.expires_at - self._refresh_margin:
                return cached.token
            fresh = await mint()
            self._tokens[key] = fresh
            return fresh.token

    def invalidate(self, key: Hashable, token: str) -> None:
        """Forget ``token`` (GitHub refused it) unless another job already replaced it."""
        cached = self._tokens.get(key)
        if cached is not None and cached.token == token:
            del self._tokens[key]
