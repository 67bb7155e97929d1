"""Redeliver failed GitHub webhooks for the configured Apps, one App after another: what
``aac github-app redeliver`` and the worker's ``github_redeliver`` job both run."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from providers.base import ProviderError
from providers.github.app import AppCredentials
from providers.github.auth import utc_now
from providers.github.hook_admin import AppHookAdmin, RedeliveryReport, redeliver_failed

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
