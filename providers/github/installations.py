"""GitHub App installations: their rows, their mapping to organisations, and which one an
event or a repository belongs to (storage only; the caller owns the transaction)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from providers.events import InstallationChanged
from providers.github.app import app_for_installation_event
from providers.github.errors import InstallationGone
from providers.github.provider import InstallationDetails
from storage import queue
from storage.models import GithubApp, Installation, Organization
from storage.orgs import claiming_org, find_org
from storage.types import utcnow

log = logging.getLogger("aac.github.installations")
READ_REPOSITORIES_JOB = "installation_repositories"


async def installation_row(
    session: AsyncSession, app: GithubApp, installation_id: int
) -> Installation | None:
    """The App's installation: ids are unique per App only (each GHES counts from 1)."""
    return (
        await session.execute(
            select(Installation).where(
                Installation.github_app_id == app.id,
                Installation.installation_id == installation_id,
            )
        )
    ).scalar_one_or_none()


async def installation_for_event(
    session: AsyncSession, installation_id: int, api_url: str = "", app_row_id: int | None = None
) -> Installation | None:
    """The installation a webhook names by id alone (``pull_request``, ``check_run``...).

    ``app_row_id`` is the App whose secret verified the delivery: only its installation fits,
    whatever host the payload's URLs name (a payload is the sender's word; the signature is
    proof). Deliveries stored before that was recorded fall back to ``api_url``, the API base
    URL the payload's repository lives under: a configured App's host narrows the choice,
    otherwise the id must be unambiguous. None, logged, when nothing fits or several do.
    """
    query = (
        select(Installation, GithubApp.api_url)
        .join(GithubApp, GithubApp.id == Installation.github_app_id)
        .where(Installation.installation_id == installation_id)
        .order_by(Installation.id)
    )
    if app_row_id is not None:
        query = query.where(Installation.github_app_id == app_row_id)
    rows: list[tuple[Installation, str]] = [(row, url) for row, url in await session.execute(query)]
    if api_url and app_row_id is None:
        hosts = {
            url.rstrip("/")
            for url in (await session.execute(select(GithubApp.api_url))).scalars()
            if _under(api_url, url)
        }
        if hosts:
            rows = [(row, url) for row, url in rows if url.rstrip("/") in hosts]
    if len(rows) == 1:
        return rows[0][0]
    if rows:
        log.warning(
            "several Apps have an installation with this id and the event does not say which "
            "host it is from; ignored",
            extra={"installation": installation_id, "hosts": sorted(url for _, url in rows)},
        )
    return None


def _under(url: str, base: str) -> bool:
    base = base.rstrip("/")
    return url.rstrip("/") == base or url.startswith(base + "/")


async def installation_org(
    session: AsyncSession,
    installation_id: int | None,
    api_url: str = "",
    app_row_id: int | None = None,
) -> Organization | None:
    """The organisation a live installation of the verifying App (else of the host ``api_url``
    names) is linked to, or None (logged)."""
    if installation_id is None:
        return None
    row = await installation_for_event(session, installation_id, api_url, app_row_id)
    if row is None or row.org_id is None or row.deleted_at or row.suspended_at:
        log.info(
            "installation is unknown, unlinked or suspended; event ignored",
            extra={"installation": installation_id},
        )
        return None
    return await session.get(Organization, row.org_id)


async def apply_installation_change(
    session: AsyncSession,
    change: InstallationChanged,
    *,
    verified_by: int | None = None,
    auto_link: bool = False,
) -> Installation | None:
    """Create, update, suspend or delete the installation row the event describes.

    The row belongs to the App whose secret verified the delivery (``verified_by``, its row
    id); a payload naming another App is ignored. Deliveries stored before that was recorded
    fall back to the App the payload names. An unlinked installation links only to the
    organisation that claims its account (``aac org create --github-account``); with
    ``auto_link`` (single-tenant opt-in) also to the organisation named like its account.
    """
    if change.installation_id is None:
        return None
    app = await _event_app(session, change, verified_by)
    if app is None:
        log.warning(
            "installation event for an App that is not configured, or ambiguous; ignored "
            "(`aac github-app configure` that App)",
            extra={"installation": change.installation_id, "app_id": change.app_id},
        )
        return None
    row = await installation_row(session, app, change.installation_id)
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
    if row.org_id is None and row.account_login:
        await _link_by_claim(session, row, auto_link=auto_link)
    await session.flush()
    if action == "installation.unsuspend" and not change.repositories_added:
        # GitHub's unsuspend payload need not list them, and while suspended nothing could
        # read them (``aac github-app link`` of a suspended installation stores none).
        await queue.enqueue(
            session,
            READ_REPOSITORIES_JOB,
            {"installation": row.id},
            unique_key=f"installation-repositories:{row.id}",
        )
    return row


async def _event_app(
    session: AsyncSession, change: InstallationChanged, verified_by: int | None
) -> GithubApp | None:
    """The App an installation event is for: the one that verified it, if the payload does
    not name another."""
    if verified_by is None:
        return await app_for_installation_event(session, change.app_id, change.access_tokens_url)
    app = await session.get(GithubApp, verified_by)
    if app is not None and change.app_id is not None and change.app_id != app.app_id:
        log.warning(
            "installation event signed by one App names another; ignored",
            extra={"app_id": change.app_id, "verified_by": app.app_id},
        )
        return None
    return app


async def _link_by_claim(session: AsyncSession, row: Installation, *, auto_link: bool) -> None:
    """Link a new installation to the organisation that claims its account; else, with
    ``auto_link``, to the one whose slug is its login. Otherwise it waits, unlinked, for an
    operator: anyone can name a GitHub account like a tenant's slug."""
    account = row.account_login.lower()
    org = await claiming_org(session, "github", account)
    how = "claimed account"
    if org is None and auto_link:
        org = await find_org(session, account)
        how = "account login (AAC_GITHUB_AUTO_LINK)"
    if org is None:
        log.info(
            "installation stays unlinked: no organisation claims its account; "
            "`aac github-app link` links it",
            extra={"installation": row.installation_id, "account": row.account_login},
        )
        return
    row.org_id = org.id
    log.info("installation linked by " + how, extra={"org": org.slug})


async def link_installation(
    session: AsyncSession, app: GithubApp, details: InstallationDetails, org: Organization
) -> Installation:
    """Map an installation, as GitHub just described it, to an organisation
    (``aac github-app link``). Linking revives an installation marked gone; a suspended one
    stays suspended, with the repositories already stored (none for a new row)."""
    row = await installation_row(session, app, details.installation_id)
    if row is None:
        row = Installation(installation_id=details.installation_id, github_app_id=app.id)
        session.add(row)
    row.account_login = details.account_login
    row.account_type = details.account_type or "Organization"
    if not details.suspended:
        # A suspended installation's repositories cannot be read: keep what is stored until
        # the ``installation unsuspend`` event lists them.
        row.repositories = list(details.repositories)
    elif row.repositories is None:
        row.repositories = []
    row.permissions = dict(details.permissions)
    row.deleted_at = None
    if not details.suspended:
        row.suspended_at = None
    elif row.suspended_at is None:
        row.suspended_at = utcnow()
    row.org_id = org.id
    await session.flush()
    return row


async def mark_installation_gone(session: AsyncSession, gone: InstallationGone) -> bool:
    """Record that GitHub no longer knows the installation of the App ``gone`` names; False
    if it already was, or if that App or installation is not stored."""
    app = (
        await session.execute(
            select(GithubApp).where(
                GithubApp.app_id == gone.app_id, GithubApp.api_url == gone.api_url.rstrip("/")
            )
        )
    ).scalar_one_or_none()
    row = None if app is None else await installation_row(session, app, gone.installation_id)
    if row is None or row.deleted_at is not None:
        return False
    row.deleted_at = utcnow()
    return True


async def find_installation(
    session: AsyncSession, org_id: int, repository: str, installation_id: int | None = None
) -> Installation | None:
    """The live installation for this organisation that covers ``repository``."""
    query = select(Installation).where(
        Installation.org_id == org_id,
        Installation.deleted_at.is_(None),
        Installation.suspended_at.is_(None),
    )
    if installation_id is not None:
        query = query.where(Installation.installation_id == installation_id)
    owner = repository.split("/", 1)[0].lower()
    for row in (await session.execute(query)).scalars():
        if repository in row.repositories or row.account_login.lower() == owner:
            return row
    return None


async def gone_installation(
    session: AsyncSession, org_id: int, repository: str, installation_id: int | None = None
) -> Installation | None:
    """The deleted (uninstalled) installation that used to cover ``repository``, if any."""
    query = select(Installation).where(
        Installation.org_id == org_id, Installation.deleted_at.is_not(None)
    )
    if installation_id is not None:
        query = query.where(Installation.installation_id == installation_id)
    owner = repository.split("/", 1)[0].lower()
    for row in (await session.execute(query.order_by(Installation.deleted_at.desc()))).scalars():
        if repository in row.repositories or row.account_login.lower() == owner:
            return row
    return None
