"""The job kinds a worker runs and the handler for each."""

from __future__ import annotations

from bot.analyse import AnalyseCycle
from bot.cycles import ANALYSE_JOB, PUBLISH_JOB
from bot.github_redeliver import GITHUB_REDELIVER_JOB, GithubRedeliver, redeliver_periodically
from bot.handlers.context import HandlerContext
from bot.handlers.installation import ReadInstallationRepositories, gone_installation_is_permanent
from bot.handlers.webhook_event import WebhookEventJob
from bot.periodic import PeriodicJob
from bot.publish import PublishCycle
from bot.retention import PRUNE_JOB, PruneJob, prune_periodically
from bot.runner_expiry import RUNNER_EXPIRY_JOB, RunnerExpiryJob, expire_periodically
from bot.runtime import Runtime
from bot.webhooks.intake import WEBHOOK_JOB
from bot.worker import Handler
from config.settings import Settings
from providers.factory import ProviderShared
from providers.github.installations import READ_REPOSITORIES_JOB
from storage.write_slots import WriteSlots


def job_handlers(runtime: Runtime, shared: ProviderShared | None = None) -> dict[str, Handler]:
    """Handlers by job kind, bound to this process's runtime and provider state."""
    if shared is None:
        # SCM writes are paced per installation across every process sharing this database.
        shared = ProviderShared.paced(WriteSlots(runtime.engine))
    hctx = HandlerContext(runtime, shared)
    sessions = runtime.sessions
    publish = PublishCycle(hctx)
    # The jobs that talk to GitHub end at once when its installation turns out to be gone.
    return {
        ANALYSE_JOB: AnalyseCycle(runtime, announce=publish.announce_analysis).run,
        PUBLISH_JOB: gone_installation_is_permanent(sessions, publish.run),
        WEBHOOK_JOB: gone_installation_is_permanent(sessions, WebhookEventJob(hctx).run),
        READ_REPOSITORIES_JOB: gone_installation_is_permanent(
            sessions, ReadInstallationRepositories(hctx).run
        ),
        PRUNE_JOB: PruneJob(runtime).run,
        # Queued every AAC_GITHUB_REDELIVER_INTERVAL seconds by the periodic-job schedule.
        GITHUB_REDELIVER_JOB: GithubRedeliver(hctx).run,
        RUNNER_EXPIRY_JOB: RunnerExpiryJob(runtime).run,
    }


def periodic_jobs(settings: Settings) -> tuple[PeriodicJob, ...]:
    """The jobs every worker queues once per period (see bot/periodic.py)."""
    jobs = (
        prune_periodically(settings),
        redeliver_periodically(settings),
        expire_periodically(settings),
    )
    return tuple(job for job in jobs if job is not None)
