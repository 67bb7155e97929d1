"""The bot's installation or credentials changed: keep App installations and their mapping to
organisations current (providers/github/installations.py stores them); read the repositories
of an unsuspended installation; and end the jobs of an installation GitHub no longer knows."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.events import InstallationChanged
from bot.handlers.context import EventRun, HandlerContext
from bot.worker import Handler, PermanentJobError
from providers.base import NotFound
from providers.github.errors import InstallationGone
from providers.github.installations import (
    apply_installation_change,
    mark_installation_gone,
)
from providers.github.provider import GithubAppClient
from storage.models import GithubApp, Installation
from storage.queue import ClaimedJob
from storage.secret_fields import github_app_owner

log = logging.getLogger("aac.handlers.installation")


async def handle(run: EventRun, event: InstallationChanged) -> None:
    """Create, update, suspend or delete the installation row, in the job's one write."""
    auto_link = run.hctx.runtime.settings.github_auto_link
    await run.write(
        lambda s: apply_installation_change(s, event, verified_by=run.app_id, auto_link=auto_link)
    )


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
