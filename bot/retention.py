"""The periodic ``prune`` job: retention as the operator set it (``AAC_RETENTION_*``)."""

from __future__ import annotations

import logging

from bot.periodic import PeriodicJob
from bot.runtime import Runtime
from config.settings import Settings
from storage.queue import ClaimedJob
from storage.retention import RetentionPolicy, prune

log = logging.getLogger("aac.retention")
PRUNE_JOB = "prune"


def retention_policy(settings: Settings) -> RetentionPolicy:
    """Days per kind: its own setting, else ``AAC_RETENTION_DAYS``."""
    days = settings.retention_days
    return RetentionPolicy(
        jobs_days=settings.retention_jobs_days or days,
        deliveries_days=settings.retention_deliveries_days or days,
        history_days=settings.retention_history_days or days,
    )


def prune_periodically(settings: Settings) -> PeriodicJob:
    """The prune job, every ``AAC_RETENTION_INTERVAL_SECONDS``."""
    return PeriodicJob(PRUNE_JOB, settings.retention_interval_seconds)


class PruneJob:
    """Job handler bound to a runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def run(self, job: ClaimedJob) -> None:
        report = await prune(self.runtime.sessions, retention_policy(self.runtime.settings))
        log.info(
            "pruned",
            extra={"jobs": report.jobs, "deliveries": report.deliveries, "results": report.results},
        )
