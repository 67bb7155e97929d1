"""The GitHub package as the core sees it (providers/registry.py): its webhook, its events,
the organisation and host an event is for, and its provider for a cycle."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from providers.base import CiProvider
from providers.context import CiContext
from providers.events import Event, Origin, host_of
from providers.github import cli, inbound
from providers.github.app import AppCache
from providers.github.installations import (
    find_installation,
    gone_installation,
    installation_for_event,
)
from providers.github.provider import GithubProvider
from providers.inbound import VerifiedDelivery
from providers.registry import EventScope, ScmPackage, WebhookRoute
from providers.shared import NullProvider, ProviderShared
from storage.models import GithubApp, Installation, Organization
from storage.orgs import integration_token
from storage.secret_fields import github_app_owner
from storage.vault import Vault

log = logging.getLogger("aac.github")
SOURCE = inbound.SOURCE
PATH = "/webhooks/github"
_HEADERS = frozenset({b"x-hub-signature-256", b"x-github-event", b"x-github-delivery"})


class GithubReceiver:
    """Checks each delivery's signature against every configured App's webhook secret (the
    decrypted secrets are cached: no database read per delivery)."""

    headers = _HEADERS
    delivery_header = "x-github-delivery"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], vault: Vault) -> None:
        self.sessions = sessions
        self.vault = vault
        self.apps = AppCache()

    async def verify(
        self, headers: Mapping[str, str], body: bytes, org_slug: str | None
    ) -> VerifiedDelivery:
        secrets = [
            (app.row_id, app.webhook_secret.reveal())
            for app in await self.apps.get(self.sessions, self.vault)
        ]
        return inbound.verify_delivery(headers, body, secrets)


def parse_event(event: str, payload: dict[str, Any], bot_logins: set[str]) -> Event:
    """A verified delivery as a neutral event (providers/github/inbound.py)."""
    return inbound.parse_event(event, payload, bot_logins=bot_logins)


async def bot_logins(session: AsyncSession, org_id: int | None) -> set[str]:
    """Every configured App's bot login (``<slug>[bot]``)."""
    return {
        login for login in (await session.execute(select(GithubApp.bot_login))).scalars() if login
    }


async def scope(
    session: AsyncSession, origin: Origin, org_id: int | None, app_id: int | None = None
) -> EventScope | None:
    """The organisation the event's live installation of the verifying App (``app_id``) is
    linked to, and that App's host."""
    if origin.installation_id is None:
        return None
    row = await installation_for_event(session, origin.installation_id, origin.api_url, app_id)
    if row is None or row.org_id is None or row.deleted_at or row.suspended_at:
        log.info(
            "installation is unknown, unlinked or suspended; event ignored",
            extra={"installation": origin.installation_id},
        )
        return None
    org = await session.get(Organization, row.org_id)
    app = await session.get(GithubApp, row.github_app_id)
    if org is None or app is None:
        return None
    return EventScope(org, host_of(app.api_url))


async def host_for_org(session: AsyncSession, org: Organization) -> str:
    """The App host of the organisation's first live installation, else its token's host,
    else github.com's API: what its webhook-opened cycles are keyed by."""
    api_url = (
        await session.execute(
            select(GithubApp.api_url)
            .join(Installation, Installation.github_app_id == GithubApp.id)
            .where(Installation.org_id == org.id, Installation.deleted_at.is_(None))
            .order_by(Installation.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    integration = org.integrations.get(SOURCE)
    return host_of(api_url or (integration and integration.base_url) or inbound.DEFAULT_API_URL)


async def build_provider(
    session: AsyncSession,
    vault: Vault,
    org: Organization,
    ctx: CiContext,
    shared: ProviderShared,
) -> CiProvider | NullProvider:
    """The App installation that covers the repository (check runs), else the
    organisation's token (commit statuses), else a NullProvider saying which is missing."""
    extra = ctx.extra.get("installation_id")
    installation_id = extra if isinstance(extra, int) else None
    installation = await find_installation(session, org.id, ctx.repository, installation_id)
    if installation is not None:
        app = await session.get(GithubApp, installation.github_app_id)
        if app is not None:
            key = vault.decrypt(app.private_key_enc, github_app_owner(app.id, "private_key"))
            return GithubProvider.for_app(
                app_id=app.app_id,
                private_key=key.reveal(),
                installation_id=installation.installation_id,
                http=shared.http,
                shared=shared.github,
                api_url=app.api_url,
                login=app.bot_login,
                org=org.slug,
            )
    token = integration_token(vault, org, "github")
    if token is not None:
        integration = org.integrations["github"]
        return GithubProvider.for_token(
            token=token.reveal(),
            http=shared.http,
            shared=shared.github,
            api_url=integration.base_url or "https://api.github.com",
            org=org.slug,
        )
    gone = await gone_installation(session, org.id, ctx.repository, installation_id)
    if gone is not None:
        return NullProvider(
            f"the GitHub App installation {gone.installation_id} that covered {ctx.repository} "
            "is gone (uninstalled, or GitHub no longer knows it); install the App again or "
            "re-link it with `aac github-app link`"
        )
    return NullProvider(
        f"no GitHub App installation covers {ctx.repository} and organisation {org.slug} has no "
        "GitHub token (`aac github-app link` or `aac integration set github`)"
    )


PACKAGE = ScmPackage(
    source=SOURCE,
    default_host=host_of(inbound.DEFAULT_API_URL),
    webhook=WebhookRoute(PATH, per_org=False, receiver=GithubReceiver),
    parse_event=parse_event,
    bot_logins=bot_logins,
    scope=scope,
    host_for_org=host_for_org,
    build_provider=build_provider,
    cli=cli.GROUP,
)
