"""``installation`` and ``installation_repositories``: keep installations and their mapping to
organisations current, and ``aac github-app link``."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.events import InstallationChanged
from bot.github_app import app_for_installation_event
from providers.github import InstallationDetails
from storage.models import GithubApp, Installation, Organization
from storage.types import utcnow

log = logging.getLogger("aac.handlers.installation")


async def _installation_row(session: AsyncSession, installation_id: int) -> Installation | None:
    return (
        await session.execute(
            select(Installation).where(Installation.installation_id == installation_id)
        )
    ).scalar_one_or_none()


async def apply_installation_change(
    session: AsyncSession, change: InstallationChanged, *, auto_link: bool = True
) -> Installation | None:
    """Create, update, suspend or delete the installation row the event describes.

    The row belongs to the App the payload names (``installation.app_id``); an event no
    configured App fits is ignored rather than attached to the wrong one. With ``auto_link``
    an unlinked installation maps to the organisation named like its account.
    """
    app = await app_for_installation_event(session, change.app_id, change.access_tokens_url)
    if app is None:
        log.warning(
            "installation event for an App that is not configured, or ambiguous; ignored "
            "(`aac github-app configure` that App)",
            extra={"installation": change.installation_id, "app_id": change.app_id},
        )
        return None
    row = await _installation_row(session, change.installation_id)
    if row is None:
        row = Installation(
            github_app_id=app.id,
            installation_id=change.installation_id,
            account_login=change.account_login,
            account_type=change.account_type,
            repositories=[],
            permissions={},
        )
        session.add(row)
    row.github_app_id = app.id
    action = change.action
    if action == "installation.deleted":
        row.deleted_at = utcnow()
    elif action == "installation.suspend":
        row.suspended_at = utcnow()
    elif action == "installation.unsuspend":
        row.suspended_at = None
    elif action == "installation.created":
        row.deleted_at = None
        row.suspended_at = None
    if change.permissions:
        row.permissions = change.permissions
    if change.account_login:
        row.account_login = change.account_login
    repos = [r for r in row.repositories if r not in change.repositories_removed]
    repos += [r for r in change.repositories_added if r not in repos]
    row.repositories = repos
    if row.org_id is None and auto_link:
        # Automatic mapping: an organisation whose slug is the account login, lower-cased.
        org = (
            await session.execute(
                select(Organization).where(Organization.slug == change.account_login.lower())
            )
        ).scalar_one_or_none()
        if org is not None:
            row.org_id = org.id
            log.info("installation linked by account login", extra={"org": org.slug})
    await session.flush()
    return row


async def link_installation(
    session: AsyncSession, app: GithubApp, details: InstallationDetails, org: Organization
) -> Installation:
    """Map an installation, as GitHub just described it, to an organisation
    (``aac github-app link``). Linking revives a deleted installation."""
    row = await _installation_row(session, details.installation_id)
    if row is None:
        row = Installation(installation_id=details.installation_id, github_app_id=app.id)
        session.add(row)
    row.github_app_id = app.id
    row.account_login = details.account_login
    row.account_type = details.account_type or "Organization"
    row.repositories = list(details.repositories)
    row.permissions = dict(details.permissions)
    row.deleted_at = None
    if not details.suspended:
        row.suspended_at = None
    elif row.suspended_at is None:
        row.suspended_at = utcnow()
    row.org_id = org.id
    await session.flush()
    return row
