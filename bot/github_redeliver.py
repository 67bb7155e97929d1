"""Redeliver failed GitHub webhooks for the configured Apps: ``aac github-app redeliver`` and
the ``github_redeliver`` job the worker runs periodically, so an outage heals by itself."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from bot.github_app import AppCredentials, load_apps
from bot.handlers.context import HandlerContext
from providers.base import ProviderError
from providers.github_auth import utc_now
from providers.github_hook_admin import AppHookAdmin, RedeliveryReport, redeliver_failed
from storage.queue import ClaimedJob

GITHUB_REDELIVER_JOB = "github_redeliver"
log = logging.getLogger("aac.github.redeliver")
_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> timedelta:
    """``90m``, ``8h``, ``1d12h``... as a timedelta; ValueError for anything else."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration like 30m, 8h or 2d")
    return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))


@dataclass(frozen=True, slots=True)
class AppRedelivery:
    """One App's run: its report, or why listing its deliveries failed."""

    app_id: int
    api_url: str
    report: RedeliveryReport | None = None
    error: ProviderError | None = None


async def redeliver_for_apps(
    apps: Iterable[AppCredentials],
    http: httpx.AsyncClient,
    *,
    window: timedelta,
    include_refused: bool = False,
    now: datetime | None = None,
) -> list[AppRedelivery]:
    """Run ``redeliver_failed`` for each App in turn; one App's failure does not stop the rest."""
    moment = now or utc_now()
    results = []
    for app in apps:
        admin = AppHookAdmin(
            app_id=app.app_id, private_key=app.private_key.reveal(), http=http, api_url=app.api_url
        )
        try:
            report = await redeliver_failed(
                admin, since=window, now=moment, include_refused=include_refused
            )
        except ProviderError as exc:
            results.append(AppRedelivery(app.app_id, app.api_url, error=exc))
        else:
            results.append(AppRedelivery(app.app_id, app.api_url, report=report))
    return results


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
