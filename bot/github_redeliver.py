"""The ``github_redeliver`` job: the worker asks GitHub again for failed webhook deliveries
every ``AAC_GITHUB_REDELIVER_INTERVAL`` seconds, so an outage of the bot heals by itself."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.handlers.context import HandlerContext
from bot.periodic import PeriodicJob
from config.settings import Settings
from providers.base import ProviderError
from providers.github.app import load_apps
from providers.github.redeliver import redeliver_for_apps
from storage.queue import ClaimedJob

GITHUB_REDELIVER_JOB = "github_redeliver"
log = logging.getLogger("aac.github.redeliver")


def redeliver_periodically(settings: Settings) -> PeriodicJob | None:
    """The redelivery job every ``AAC_GITHUB_REDELIVER_INTERVAL`` seconds; None when it is 0."""
    if settings.github_redeliver_interval <= 0:
        return None
    return PeriodicJob(GITHUB_REDELIVER_JOB, settings.github_redeliver_interval)


class GithubRedeliver:
    """The ``github_redeliver`` job: every configured App, over the configured window."""

    def __init__(self, hctx: HandlerContext) -> None:
        self._hctx = hctx

    async def run(self, job: ClaimedJob) -> None:
        """Redeliver what failed; when an App's deliveries could not be read, raises its error
        (after the other Apps ran) so the worker retries or reschedules the job."""
        runtime = self._hctx.runtime
        window = timedelta(
            seconds=float(
                job.payload.get("window_seconds") or runtime.settings.github_redeliver_window
            )
        )
        async with runtime.sessions() as session:
            apps = await load_apps(session, runtime.vault)
        results = await redeliver_for_apps(apps, self._hctx.shared.http, window=window)
        errors: list[ProviderError] = []
        for result in results:
            if result.report is not None:
                log.info(
                    "redelivered failed GitHub webhooks",
                    extra={
                        "app_id": result.app_id,
                        "api_url": result.api_url,
                        "seen": result.report.seen,
                        "redelivered": len(result.report.redelivered),
                        "refused": len(result.report.failed),
                        "left_for_next_run": result.report.capped,
                    },
                )
            elif result.error is not None:
                log.warning(
                    "cannot read the App's webhook deliveries",
                    extra={"app_id": result.app_id, "api_url": result.api_url},
                )
                errors.append(result.error)
        if errors:
            raise errors[0]
