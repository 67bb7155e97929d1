"""Organisations and their integrations. Functions take the caller's session and never commit."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Integration, Organization
from storage.secret_fields import integration_owner
from storage.vault import Secret, Vault

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
PROVIDERS = ("github", "gitlab", "azure", "llm")
# A GitHub account login: letters, digits and inner single hyphens, at most 39 characters.
GITHUB_LOGIN = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,38}$")


class OrgError(Exception):
    """A named organisation problem: unknown slug, duplicate slug, invalid input."""


async def create_org(
    session: AsyncSession,
    slug: str,
    name: str | None = None,
    *,
    github_accounts: Sequence[str] = (),
) -> Organization:
    """Create an organisation, claiming the GitHub accounts whose App installations link to
    it on their own; OrgError if the slug or a login is malformed, or either is taken."""
    if not SLUG.match(slug):
        raise OrgError(
            f"slug {slug!r} is not valid: use 1-64 lowercase letters, digits and inner hyphens"
        )
    if await find_org(session, slug) is not None:
        raise OrgError(f"organisation {slug!r} already exists")
    accounts = sorted({account.lower() for account in github_accounts})
    for account in accounts:
        if not GITHUB_LOGIN.match(account):
            raise OrgError(f"GitHub account {account!r} is not a valid GitHub login")
        holder = await claiming_org(session, "github", account)
        if holder is not None:
            raise OrgError(f"GitHub account {account!r} is already claimed by {holder.slug!r}")
    org = Organization(
        slug=slug,
        name=name or slug,
        settings={},
        scm_claims={"github": accounts} if accounts else {},
        integrations={},
    )
    session.add(org)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise OrgError(f"organisation {slug!r} already exists") from None
    return org


async def claiming_org(session: AsyncSession, source: str, account: str) -> Organization | None:
    """The organisation that claims ``source``'s ``account`` (case-insensitive), if any.

    Read in Python: claims change rarely and are read once per installation event, and a
    JSON containment query would differ per engine."""
    wanted = account.lower()
    for org in (await session.execute(select(Organization).order_by(Organization.id))).scalars():
        if wanted in (org.scm_claims or {}).get(source, []):
            return org
    return None


async def find_org(session: AsyncSession, slug: str) -> Organization | None:
    """The organisation with this slug, or None."""
    return (
        await session.execute(select(Organization).where(Organization.slug == slug))
    ).scalar_one_or_none()


async def get_org(session: AsyncSession, slug: str) -> Organization:
    """The organisation with this slug; OrgError naming it when unknown."""
    org = await find_org(session, slug)
    if org is None:
        raise OrgError(f"no organisation {slug!r}; list them with `aac org list`")
    return org


async def list_orgs(session: AsyncSession) -> list[Organization]:
    """All organisations, by slug."""
    return list((await session.execute(select(Organization).order_by(Organization.slug))).scalars())


async def set_integration(
    session: AsyncSession,
    vault: Vault,
    org: Organization,
    provider: str,
    *,
    token: str | None = None,
    webhook_secret: str | None = None,
    base_url: str | None = None,
    enabled: bool = True,
) -> Integration:
    """Create or update an organisation's integration; secrets are stored encrypted."""
    if provider not in PROVIDERS:
        raise OrgError(f"unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    if base_url is not None:
        base_url = checked_base_url(base_url)
    integration = org.integrations.get(provider)
    if integration is None:
        integration = Integration(org_id=org.id, provider=provider)
        org.integrations[provider] = integration
    integration.enabled = enabled
    if base_url is not None:
        integration.base_url = base_url
    if token is not None:
        integration.token_enc = vault.encrypt(token, integration_owner(org.id, provider, "token"))
    if webhook_secret is not None:
        integration.webhook_secret_enc = vault.encrypt(
            webhook_secret, integration_owner(org.id, provider, "webhook_secret")
        )
    await session.flush()
    return integration


def checked_base_url(base_url: str) -> str:
    """A self-hosted server's URL, without a trailing slash; OrgError unless it is https://
    (plain http:// only to this machine, e.g. a local test server): the token travels to it."""
    parts = urlsplit(base_url)
    if "@" in parts.netloc:
        # Not echoed: whatever precedes the @ is likely a credential.
        raise OrgError("base URL must not contain credentials; pipe the token to --token-stdin")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise OrgError(f"base URL {_shown(parts)} has an invalid port") from None
    host = parts.hostname or ""
    if not (parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host))):
        raise OrgError(
            f"base URL {_shown(parts)} must start with https:// "
            "(http:// is accepted only for localhost)"
        )
    if not host or parts.query or parts.fragment:
        raise OrgError(
            f"base URL {_shown(parts)} must be a server address like https://gitlab.example.com "
            "(no query or fragment)"
        )
    return base_url.rstrip("/")


def _shown(parts: SplitResult) -> str:
    """Scheme and host only: a path, query or fragment may carry a token (?private_token=)."""
    if not parts.scheme:  # "gitlab.example.com/x": the host is the path's first segment
        return repr(parts.path.split("/", 1)[0])
    return repr(f"{parts.scheme}://{parts.hostname or ''}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def integration_token(vault: Vault, org: Organization, provider: str) -> Secret | None:
    """Decrypt an organisation's token for one provider, when configured and enabled."""
    integration = org.integrations.get(provider)
    if integration is None or not integration.enabled or integration.token_enc is None:
        return None
    return vault.decrypt(integration.token_enc, integration_owner(org.id, provider, "token"))


def integration_webhook_secret(vault: Vault, org: Organization, provider: str) -> Secret | None:
    """Decrypt an organisation's webhook secret for one provider, when one is stored."""
    integration = org.integrations.get(provider)
    if integration is None or integration.webhook_secret_enc is None:
        return None
    return vault.decrypt(
        integration.webhook_secret_enc, integration_owner(org.id, provider, "webhook_secret")
    )


def set_org_setting(org: Organization, key: str, value: Any) -> None:
    """Set one key of the organisation's settings (a new mapping, so the change is saved)."""
    org.settings = {**(org.settings or {}), key: value}
