"""The GitHub App's stored credentials: configure, load and cache the decrypted secrets."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import GithubApp
from storage.secret_fields import github_app_owner
from storage.vault import Secret, Vault

SECRET_CACHE_SECONDS = 30.0
DEFAULT_API_URL = "https://api.github.com"


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """One App's identity and decrypted secrets, held in memory only while the process runs."""

    row_id: int
    app_id: int
    api_url: str
    bot_login: str | None
    private_key: Secret
    webhook_secret: Secret


def check_private_key(private_key_pem: str) -> None:
    """ValueError unless this looks like a PEM private key (checked before anything is sent)."""
    if "PRIVATE KEY-----" not in private_key_pem:
        raise ValueError("the private key file is not a PEM private key")


async def configure_app(
    session: AsyncSession,
    vault: Vault,
    *,
    app_id: int,
    private_key_pem: str,
    webhook_secret: str,
    api_url: str = DEFAULT_API_URL,
    slug: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> GithubApp:
    """Create or update the App for ``api_url``; secrets are stored encrypted."""
    check_private_key(private_key_pem)
    api_url = api_url.rstrip("/")
    row = (
        await session.execute(
            select(GithubApp).where(GithubApp.api_url == api_url, GithubApp.app_id == app_id)
        )
    ).scalar_one_or_none()
    if row is None:
        row = GithubApp(app_id=app_id, api_url=api_url, private_key_enc="", webhook_secret_enc="")
        session.add(row)
        await session.flush()
    row.slug = slug or row.slug
    if slug:
        row.bot_login = f"{slug}[bot]"
    row.private_key_enc = vault.encrypt(private_key_pem, github_app_owner(row.id, "private_key"))
    row.webhook_secret_enc = vault.encrypt(
        webhook_secret, github_app_owner(row.id, "webhook_secret")
    )
    if client_id and client_secret:
        row.client_id = client_id
        row.client_secret_enc = vault.encrypt(
            client_secret, github_app_owner(row.id, "client_secret")
        )
    await session.flush()
    return row


async def load_apps(session: AsyncSession, vault: Vault) -> list[AppCredentials]:
    """Every configured App with its secrets decrypted."""
    rows = (await session.execute(select(GithubApp).order_by(GithubApp.id))).scalars()
    return [
        AppCredentials(
            row_id=row.id,
            app_id=row.app_id,
            api_url=row.api_url,
            bot_login=row.bot_login,
            private_key=vault.decrypt(row.private_key_enc, github_app_owner(row.id, "private_key")),
            webhook_secret=vault.decrypt(
                row.webhook_secret_enc, github_app_owner(row.id, "webhook_secret")
            ),
        )
        for row in rows
    ]


class AppCache:
    """Decrypted App credentials, reloaded at most every few seconds (webhook hot path)."""

    def __init__(self, ttl: float = SECRET_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._apps: list[AppCredentials] = []
        self._loaded_at = float("-inf")

    async def get(
        self, sessions: async_sessionmaker[AsyncSession], vault: Vault
    ) -> list[AppCredentials]:
        """The Apps, from memory when loaded within the last ``ttl`` seconds."""
        if time.monotonic() - self._loaded_at > self.ttl:
            async with sessions() as session:
                self._apps = await load_apps(session, vault)
            self._loaded_at = time.monotonic()
        return self._apps

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")


async def choose_app(
    session: AsyncSession, *, app_id: int | None = None, api_url: str | None = None
) -> GithubApp:
    """The one configured App matching ``app_id`` and ``api_url`` (either may be omitted);
    LookupError naming the choices when none or several match."""
    rows = list((await session.execute(select(GithubApp).order_by(GithubApp.id))).scalars())
    if not rows:
        raise LookupError("no GitHub App is configured; run `aac github-app configure` first")
    wanted = api_url.rstrip("/") if api_url else None
    matches = [
        row
        for row in rows
        if (app_id is None or row.app_id == app_id) and (wanted is None or row.api_url == wanted)
    ]
    if len(matches) == 1:
        return matches[0]
    configured = ", ".join(f"{row.app_id} at {row.api_url}" for row in rows)
    if not matches:
        asked = " ".join(
            part
            for part in (
                f"with App ID {app_id}" if app_id is not None else "",
                f"at {wanted}" if wanted else "",
            )
            if part
        )
        raise LookupError(f"no GitHub App {asked} is configured (configured: {configured})")
    hint = "--api-url" if app_id is not None else "--app-id (and --api-url if needed)"
    raise LookupError(f"several GitHub Apps are configured ({configured}): choose one with {hint}")


async def app_for_installation_event(
    session: AsyncSession, app_id: int | None, access_tokens_url: str = ""
) -> GithubApp | None:
    """The App an ``installation`` / ``installation_repositories`` event belongs to.

    GitHub puts ``installation.app_id`` in those payloads; when Apps on several hosts share
    that id, the host in ``installation.access_tokens_url`` tells them apart. A payload
    without ``app_id`` (older GitHub Enterprise Server) can only mean the one App configured.
    None when no App, or more than one, fits.
    """
    rows = list((await session.execute(select(GithubApp).order_by(GithubApp.id))).scalars())
    matches = [row for row in rows if app_id is None or row.app_id == app_id]
    if len(matches) > 1 and access_tokens_url:
        matches = [
            row
            for row in matches
            if access_tokens_url.startswith(row.api_url.rstrip("/") + "/app/installations/")
        ]
    return matches[0] if len(matches) == 1 else None
