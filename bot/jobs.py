"""The job kinds a worker runs and the handler for each."""

from __future__ import annotations

from bot.analyse import AnalyseCycle
from bot.cycles import ANALYSE_JOB, PUBLISH_JOB
from bot.handlers.context import HandlerContext
from bot.handlers.webhook_event import WebhookEventJob
from bot.publish import PublishCycle
from bot.runtime import Runtime
from bot.webhooks.intake import WEBHOOK_JOB
from bot.worker import Handler
from providers.factory import ProviderShared


def job_handlers(runtime: Runtime, shared: ProviderShared | None = None) -> dict[str, Handler]:
    """Handlers by job kind, bound to this process's runtime and provider state."""
    hctx = HandlerContext(runtime, shared or ProviderShared())
    return {
        ANALYSE_JOB: AnalyseCycle(runtime).run,
        PUBLISH_JOB: PublishCycle(hctx).run,
        WEBHOOK_JOB: WebhookEventJob(hctx).run,
    }
