"""The ``runner_expiry`` job: a worker re-queues (or fails) the jobs of testing nodes that
stopped renewing their lease, every ``AAC_RUNNER_EXPIRE_INTERVAL`` seconds.

A polling node does the same on its long-poll; this job covers the hour when no node polls at
all, so a vanished node's cycle is never left collecting. Safe on every replica at once: the
periodic schedule queues it once per period and the expiry itself skips rows another holds.
"""

from __future__ import annotations

import logging

from bot import runner_jobs
from bot.periodic import PeriodicJob
from bot.runtime import Runtime
from config.settings import Settings
from storage.queue import ClaimedJob

RUNNER_EXPIRY_JOB = "runner_expiry"
log = logging.getLogger("aac.runner.expiry")


def expire_periodically(settings: Settings) -> PeriodicJob:
    """The expiry job, every ``AAC_RUNNER_EXPIRE_INTERVAL`` seconds."""
    return PeriodicJob(RUNNER_EXPIRY_JOB, settings.runner_expire_interval)


class RunnerExpiryJob:
    """Job handler bound to a runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def run(self, job: ClaimedJob) -> None:
        """Expire the leases that ran out, in one transaction."""
        async with self.runtime.sessions.begin() as session:
            moved = await runner_jobs.expire_vanished(session)
        if moved:
            log.info("expired testing-node leases", extra={"jobs": moved})
