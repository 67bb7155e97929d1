"""The ``webhook_event`` job: parse a stored delivery and hand it to its event family."""

from __future__ import annotations

import json
import logging

from sqlalchemy import select

from bot.events import (
    CancelPullRequestCycles,
    Ignore,
    IngestWorkflowRun,
    InstallationChanged,
    Rerun,
    StartPullRequestCycles,
    map_github_event,
)
from bot.handlers.context import HandlerContext
from bot.handlers.installation import apply_installation_change
from bot.handlers.pull_request import cancel_pull_request_cycles, start_pull_request_cycles
from bot.handlers.rerun import handle_rerun
from bot.handlers.workflow_run import ingest_workflow_run
from bot.worker import PermanentJobError
from storage.delivery_body import BodyFormatError, decode_body
from storage.models import GithubApp, WebhookDelivery
from storage.queue import ClaimedJob
from storage.types import utcnow

log = logging.getLogger("aac.handlers")


class WebhookEventJob:
    """Job handler bound to the process's runtime and provider state."""

    def __init__(self, hctx: HandlerContext) -> None:
        self.hctx = hctx

    async def run(self, job: ClaimedJob) -> None:
        delivery_id = job.payload.get("delivery")
        if not isinstance(delivery_id, int):
            raise PermanentJobError("payload has no delivery id")
        async with self.hctx.runtime.sessions.begin() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is None:
                raise PermanentJobError(f"delivery {delivery_id} no longer exists")
            try:
                payload = json.loads(decode_body(delivery.body))
            except (json.JSONDecodeError, BodyFormatError):
                raise PermanentJobError("delivery body is not JSON") from None
            if not isinstance(payload, dict):
                raise PermanentJobError("delivery body is not a JSON object")
            logins = {
                login
                for login in (await session.execute(select(GithubApp.bot_login))).scalars()
                if login
            }
            action = map_github_event(delivery.event, payload, bot_logins=logins)
            # Set on the row only once something was done: an attribute set here would be
            # flushed by the commit even when the event turns out to need nothing.
            action_name = str(payload.get("action") or "") or None
            log.info(
                "webhook",
                extra={
                    "event": delivery.event,
                    "action": action_name,
                    "does": type(action).__name__,
                },
            )
            if isinstance(action, Ignore):
                # No write at all: most deliveries are ignored, and on SQLite every write
                # transaction competes with webhook intake for the one writer lock.
                log.info("webhook ignored: %s", action.reason)
                return
            elif isinstance(action, InstallationChanged):
                await apply_installation_change(
                    session, action, auto_link=self.hctx.runtime.settings.github_auto_link
                )
            elif isinstance(action, StartPullRequestCycles):
                if not await start_pull_request_cycles(self.hctx, session, action):
                    return  # unlinked installation, or every suite already open: no write
            elif isinstance(action, CancelPullRequestCycles):
                await cancel_pull_request_cycles(session, action)
            elif isinstance(action, IngestWorkflowRun):
                await ingest_workflow_run(self.hctx, session, action)
            elif isinstance(action, Rerun):
                await handle_rerun(self.hctx, session, action)
            # Written last: SQLite takes its write lock at the first change, and the
            # handlers above make network calls.
            delivery.action = action_name
            delivery.processed_at = utcnow()
