"""The Azure DevOps package as the core sees it (providers/registry.py): its service-hook
webhook, its events, the organisation and host an event is for, and its provider."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from providers.azure_devops import cli, inbound
from providers.azure_devops.provider import AzureDevOpsProvider
from providers.base import CiProvider
from providers.context import CiContext
from providers.events import Event, Origin, host_of
from providers.inbound import VerifiedDelivery
from providers.org_secrets import OrgWebhookSecrets
from providers.registry import EventScope, ScmPackage, WebhookRoute
from providers.shared import NullProvider, ProviderShared
from storage.models import Organization
from storage.orgs import integration_token
from storage.vault import Vault

SOURCE = inbound.SOURCE
PATH = "/webhooks/azure"
log = logging.getLogger("aac.azure")


class AzureReceiver:
    """Checks each notification's basic-auth password (or secret header) against the
    organisation's webhook secret named by the URL (cached: no database read per delivery)."""

    headers = frozenset({b"authorization", inbound.SECRET_HEADER.encode()})
    delivery_header = "x-request-id"  # service hooks send no delivery header

    def __init__(self, sessions: async_sessionmaker[AsyncSession], vault: Vault) -> None:
        self.secrets = OrgWebhookSecrets(sessions, vault, SOURCE)

    async def verify(
        self, headers: Mapping[str, str], body: bytes, org_slug: str | None
    ) -> VerifiedDelivery:
        org_id, secret = await self.secrets.get(org_slug) if org_slug else (None, None)
        return inbound.verify_delivery(headers, body, secret, org_id)


def organisation_url(org: Organization) -> str:
    """The organisation's Azure DevOps URL: its integration's base URL (Azure DevOps Server:
    the collection URL), else ``https://dev.azure.com/<slug>``."""
    integration = org.integrations.get(SOURCE)
    return (integration and integration.base_url) or f"{inbound.DEFAULT_BASE_URL}/{org.slug}"


def parse_event(event: str, payload: dict[str, Any], bot_logins: set[str]) -> Event:
    """A verified notification as a neutral event (providers/azure_devops/inbound.py)."""
    return inbound.parse_event(event, payload, bot_logins=bot_logins)


async def bot_logins(session: AsyncSession, org_id: int | None) -> set[str]:
    """None stored: the bot's threads carry no ``/aac`` command, and a command needs a
    contributor's identity anyway (``may_run_commands``)."""
    return set()


async def scope(
    session: AsyncSession, origin: Origin, org_id: int | None, app_id: int | None = None
) -> EventScope | None:
    """The organisation whose webhook URL and secret the delivery came through, keyed by its
    configured host; a payload naming another collection host is not for it."""
    org = await session.get(Organization, org_id) if org_id is not None else None
    if org is None:
        return None
    host = host_of(organisation_url(org))
    if origin.api_url and host_of(origin.api_url) != host:
        log.info(
            "notification from another Azure DevOps host ignored",
            extra={"host": host_of(origin.api_url), "org": org.slug},
        )
        return None
    return EventScope(org, host)


async def host_for_org(session: AsyncSession, org: Organization) -> str:
    """The host of the organisation's Azure DevOps URL: what its cycles are keyed by."""
    return host_of(organisation_url(org))


async def build_provider(
    session: AsyncSession,
    vault: Vault,
    org: Organization,
    ctx: CiContext,
    shared: ProviderShared,
) -> CiProvider | NullProvider:
    """The organisation's PAT on its organisation URL, else a NullProvider saying so."""
    token = integration_token(vault, org, SOURCE)
    if token is None:
        return NullProvider(
            f"organisation {org.slug} has no Azure DevOps token "
            "(`aac integration set azure --org ... --token-stdin`)"
        )
    return AzureDevOpsProvider(
        base_url=organisation_url(org), token=token.reveal(), org=org.slug, shared=shared.azure
    )


PACKAGE = ScmPackage(
    source=SOURCE,
    default_host=host_of(inbound.DEFAULT_BASE_URL),
    webhook=WebhookRoute(PATH, per_org=True, receiver=AzureReceiver),
    parse_event=parse_event,
    bot_logins=bot_logins,
    scope=scope,
    host_for_org=host_for_org,
    build_provider=build_provider,
    cli=cli.GROUP,
)
