"""``installation`` and ``installation_repositories``: keep installations and their mapping to
organisations current."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.events import InstallationChanged
from storage.models import GithubApp, Installation, Organization
from storage.types import utcnow

log = logging.getLogger("aac.handlers.installation")


async def apply_installation_change(
    session: AsyncSession, change: InstallationChanged, *, auto_link: bool = True
) -> Installation | None:
    """Create, update, suspend or delete the installation row the event describes."""
    row = (
        await session.execute(
            select(Installation).where(Installation.installation_id == change.installation_id)
        )
    ).scalar_one_or_none()
    if row is None:
        app = (await session.execute(select(GithubApp).order_by(GithubApp.id))).scalars().first()
        if app is None:
            log.warning("installation event but no GitHub App is configured; ignored")
            return None
        row = Installation(
            github_app_id=app.id,
            installation_id=change.installation_id,
            account_login=change.account_login,
            account_type=change.account_type,
            repositories=[],
            permissions={},
        )
        session.add(row)
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
    session: AsyncSession, installation_id: int, org: Organization
) -> Installation:
    """Map an installation to an organisation (``aac github-app link``)."""
    row = (
        await session.execute(
            select(Installation).where(Installation.installation_id == installation_id)
        )
    ).scalar_one_or_none()
    if row is None:
        app = (await session.execute(select(GithubApp).order_by(GithubApp.id))).scalars().first()
        if app is None:
            raise LookupError("no GitHub App is configured; run `aac github-app configure` first")
        row = Installation(
            github_app_id=app.id,
            installation_id=installation_id,
            account_login="",
            repositories=[],
            permissions={},
        )
        session.add(row)
    row.org_id = org.id
    await session.flush()
    return row
