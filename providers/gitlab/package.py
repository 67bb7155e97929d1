"""The GitLab package as the core sees it (providers/registry.py): its per-organisation
webhook, its events, the organisation and host an event is for, and its provider."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from providers.base import CiProvider
from providers.context import CiContext
from providers.events import Event, Origin, host_of
from providers.gitlab import inbound
from providers.gitlab.cli import GROUP as CLI
from providers.gitlab.provider import GitlabProvider
from providers.inbound import VerifiedDelivery, WebhookRejected
from providers.registry import EventScope, ScmPackage, WebhookRoute
from providers.shared import NullProvider, ProviderShared
from storage.models import Organization
from storage.orgs import integration_token
from storage.secret_fields import integration_owner
from storage.vault import Vault

log = logging.getLogger("aac.gitlab")
SOURCE = inbound.SOURCE
PATH = "/webhooks/gitlab"
SECRET_CACHE_SECONDS = 30.0
MAX_CACHED_ORGS = 10_000


@dataclass(frozen=True, slots=True)
class HookSecret:
    """An organisation's GitLab webhook secret, decrypted, and the host its GitLab is on."""

    org_id: int | None  # None: no such organisation
    secret: str | None  # None: none configured, or the integration is disabled
    host: str  # "" when no base URL is configured (gitlab.com)


async def load_hook_secret(session: AsyncSession, vault: Vault, slug: str) -> HookSecret:
    """The organisation's webhook secret and GitLab host (database and vault)."""
    org = (
        await session.execute(select(Organization).where(Organization.slug == slug))
    ).scalar_one_or_none()
    if org is None:
        return HookSecret(None, None, "")
    integration = org.integrations.get(SOURCE)
    if integration is None:
        return HookSecret(org.id, None, "")
    host = host_of(integration.base_url or "")
    if not integration.enabled or integration.webhook_secret_enc is None:
        return HookSecret(org.id, None, host)
    secret = vault.decrypt(
        integration.webhook_secret_enc, integration_owner(org.id, SOURCE, "webhook_secret")
    )
    return HookSecret(org.id, secret.reveal(), host)


class GitlabReceiver:
    """Verifies deliveries to ``/webhooks/gitlab/{org}`` against that organisation's webhook
    secret, cached for a few seconds so a busy hook costs no database read per delivery."""

    headers = inbound.HEADERS
    delivery_header = "x-gitlab-event-uuid"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vault: Vault,
        *,
        ttl: float = SECRET_CACHE_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.vault = vault
        self.ttl = ttl
        self._cache: dict[str, tuple[float, HookSecret]] = {}

    async def verify(
        self, headers: Mapping[str, str], body: bytes, org_slug: str | None
    ) -> VerifiedDelivery:
        if not org_slug or len(org_slug) > 64:
            raise WebhookRejected(401, "not_configured", "no such organisation")
        hook = await self._hook(org_slug)
        # Unknown organisation and no secret answer alike: the URL reveals nothing.
        delivery = inbound.verify_delivery(headers, body, hook.secret, now=time.time())
        instance = inbound.instance_host(headers)
        if hook.host and instance and instance != hook.host:
            raise WebhookRejected(
                401,
                "instance_mismatch",
                "X-Gitlab-Instance is not the GitLab this organisation is configured for",
            )
        return VerifiedDelivery(delivery.delivery_id, delivery.event, body, org_id=hook.org_id)

    async def _hook(self, slug: str) -> HookSecret:
        now = time.monotonic()
        cached = self._cache.get(slug)
        if cached is not None and now - cached[0] <= self.ttl:
            return cached[1]
        async with self.sessions() as session:
            hook = await load_hook_secret(session, self.vault, slug)
        if len(self._cache) >= MAX_CACHED_ORGS:
            self._cache.clear()  # forged slugs must not grow it without bound
        self._cache[slug] = (now, hook)
        return hook


def parse_event(event: str, payload: dict[str, Any], bot_logins: set[str]) -> Event:
    """A verified delivery as a neutral event (providers/gitlab/inbound.py)."""
    return inbound.parse_event(event, payload, bot_logins=bot_logins)


async def bot_logins(session: AsyncSession, org_id: int | None) -> set[str]:
    """None known without asking GitLab: the bot's notes are recognised by their report
    marker, and the handlers ask the provider (``KnowsBotIdentity``) before acting."""
    return set()


async def scope(
    session: AsyncSession, origin: Origin, org_id: int | None, app_id: int | None = None
) -> EventScope | None:
    """The organisation whose webhook URL and secret the delivery came through."""
    org = None if org_id is None else await session.get(Organization, org_id)
    if org is None:
        return None
    return EventScope(org, await host_for_org(session, org))


async def host_for_org(session: AsyncSession, org: Organization) -> str:
    """The host of the organisation's GitLab base URL, else gitlab.com."""
    integration = org.integrations.get(SOURCE)
    return host_of((integration and integration.base_url) or inbound.DEFAULT_URL)


async def build_provider(
    session: AsyncSession,
    vault: Vault,
    org: Organization,
    ctx: CiContext,
    shared: ProviderShared,
) -> CiProvider | NullProvider:
    """The organisation's GitLab, through its token and base URL."""
    token = integration_token(vault, org, SOURCE)
    if token is None:
        return NullProvider(
            f"organisation {org.slug} has no GitLab token "
            f"(`aac integration set gitlab --org {org.slug} --token-stdin`)"
        )
    integration = org.integrations[SOURCE]
    return GitlabProvider(
        base_url=integration.base_url or inbound.DEFAULT_URL,
        token=token.reveal(),
        org=org.slug,
        shared=shared.gitlab,
    )


PACKAGE = ScmPackage(
    source=SOURCE,
    default_host=host_of(inbound.DEFAULT_URL),
    webhook=WebhookRoute(PATH, per_org=True, receiver=GitlabReceiver),
    parse_event=parse_event,
    bot_logins=bot_logins,
    scope=scope,
    host_for_org=host_for_org,
    build_provider=build_provider,
    cli=CLI,
)
