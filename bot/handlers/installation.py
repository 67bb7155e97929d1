"""``installation`` and ``installation_repositories``: keep installations and their mapping to
organisations current; ``aac github-app link``; reading the repositories of an unsuspended
installation; and an installation GitHub no longer knows."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.events import InstallationChanged
from bot.github_app import app_for_installation_event
from bot.handlers.context import HandlerContext
from bot.worker import Handler, PermanentJobError
from providers.base import InstallationGone, NotFound
from providers.github import GithubAppClient, InstallationDetails
from storage import queue
from storage.models import GithubApp, Installation, Organization
from storage.queue import ClaimedJob
from storage.secret_fields import github_app_owner
from storage.types import utcnow

log = logging.getLogger("aac.handlers.installation")
READ_REPOSITORIES_JOB = "installation_repositories"


async def _installation_row(
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
    session: AsyncSession, installation_id: int, api_url: str = ""
) -> Installation | None:
    """The installation a webhook names by id alone (``pull_request``, ``check_run``...).

    ``api_url`` is the API base URL the payload's repository lives under. When it is a
    configured App's, only that App's installation fits; otherwise (no URL, or a host no App
    is configured for) the id must be unambiguous. None, logged, when nothing fits or several
    Apps hold the id.
    """
    rows: list[tuple[Installation, str]] = [
        (row, url)
        for row, url in await session.execute(
            select(Installation, GithubApp.api_url)
            .join(GithubApp, GithubApp.id == Installation.github_app_id)
            .where(Installation.installation_id == installation_id)
            .order_by(Installation.id)
        )
    ]
    if api_url:
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
    row = await _installation_row(session, app, change.installation_id)
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


async def link_installation(
    session: AsyncSession, app: GithubApp, details: InstallationDetails, org: Organization
) -> Installation:
    """Map an installation, as GitHub just described it, to an organisation
    (``aac github-app link``). Linking revives an installation marked gone; a suspended one
    stays suspended, with the repositories already stored (none for a new row)."""
    row = await _installation_row(session, app, details.installation_id)
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


class ReadInstallationRepositories:
    """The ``installation_repositories`` job: read from GitHub, as the App, which repositories
    a live installation covers, and store them (queued when one is unsuspended)."""

    def __init__(self, hctx: HandlerContext) -> None:
        self.hctx = hctx

    async def run(self, job: ClaimedJob) -> None:
        row_id = job.payload.get("installation")
        if not isinstance(row_id, int):
            raise PermanentJobError("payload has no installation")
        runtime, shared = self.hctx.runtime, self.hctx.shared
        async with runtime.sessions() as session:
            row = await session.get(Installation, row_id)
            if row is None or row.deleted_at is not None or row.suspended_at is not None:
                return  # gone or suspended again meanwhile: nothing can be read
            app = await session.get_one(GithubApp, row.github_app_id)
            key = runtime.vault.decrypt(
                app.private_key_enc, github_app_owner(app.id, "private_key")
            )
            installation_id, app_id, api_url = row.installation_id, app.app_id, app.api_url
        # No transaction is open while GitHub answers.
        client = GithubAppClient(
            app_id=app_id,
            private_key=key.reveal(),
            http=shared.http,
            shared=shared.github,
            api_url=api_url,
        )
        try:
            details = await client.installation(installation_id)
        except InstallationGone:
            raise
        except NotFound as exc:
            raise PermanentJobError(f"installation {installation_id}: {exc}") from exc
        if details.suspended:
            return
        async with runtime.sessions.begin() as session:
            row = await session.get(Installation, row_id)
            if row is not None:
                row.repositories = list(details.repositories)
        log.info(
            "installation repositories read",
            extra={"installation": installation_id, "count": len(details.repositories)},
        )


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
    row = None if app is None else await _installation_row(session, app, gone.installation_id)
    if row is None or row.deleted_at is not None:
        return False
    row.deleted_at = utcnow()
    return True


def gone_installation_is_permanent(
    sessions: async_sessionmaker[AsyncSession], handler: Handler
) -> Handler:
    """``handler``, except that a job meeting an uninstalled installation marks it deleted
    and is parked dead at once, without the retries a failing job otherwise gets.

    Uninstalled means GitHub refused a token with 404 *and* the App's own
    ``GET /app/installations/{id}`` said 404 (``InstallationGone``); a token 404 for an
    installation GitHub still knows is ``Transient`` and the job retries as usual. Later
    cycles for its repositories resolve to a NullProvider that says so, until an
    ``installation created`` event or ``aac github-app link`` revives it. The worker's one
    "job failed permanently" line carries the explanation.
    """

    async def run(job: ClaimedJob) -> None:
        try:
            await handler(job)
        except InstallationGone as exc:
            async with sessions.begin() as session:
                await mark_installation_gone(session, exc)
            raise PermanentJobError(
                f"{exc}: marked deleted; its repositories publish nowhere until the App is "
                "installed again or `aac github-app link` re-links it"
            ) from exc

    return run
