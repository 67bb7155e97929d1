"""The ``webhook_event`` job: parse a stored delivery and hand it to its event family."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
from bot.handlers.pull_request import (
    cancel_pull_request_cycles,
    repo_at_commit,
    start_pull_request_cycles,
)
from bot.handlers.rerun import apply_rerun, plan_rerun, rerun_workflows
from bot.handlers.workflow_run import fetch_workflow_run, ingest_workflow_run
from bot.worker import PermanentJobError
from storage.delivery_body import BodyFormatError, decode_body
from storage.models import GithubApp, WebhookDelivery
from storage.queue import ClaimedJob
from storage.types import utcnow

log = logging.getLogger("aac.handlers")
T = TypeVar("T")


class WebhookEventJob:
    """Job handler bound to the process's runtime and provider state."""

    def __init__(self, hctx: HandlerContext) -> None:
        self.hctx = hctx

    async def run(self, job: ClaimedJob) -> None:
        delivery_id = job.payload.get("delivery")
        if not isinstance(delivery_id, int):
            raise PermanentJobError("payload has no delivery id")
        async with self.hctx.runtime.sessions() as session:
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
            event = delivery.event
        action = map_github_event(event, payload, bot_logins=logins)
        action_name = str(payload.get("action") or "") or None
        log.info(
            "webhook",
            extra={"event": event, "action": action_name, "does": type(action).__name__},
        )
        if isinstance(action, Ignore):
            # No write at all: most deliveries are ignored, and on SQLite every write
            # transaction competes with webhook intake for the one writer lock.
            log.info("webhook ignored: %s", action.reason)
            return
        # GitHub is read first (the repository's .aac.yml, artifacts, a commenter's
        # permission), each handler reading the database in short sessions of its own; then
        # one transaction writes; then GitHub is written to. No transaction is open across a
        # network call: on PostgreSQL it would hold its locks that long, and on SQLite a
        # paced GitHub write waits for a write slot, a row update that needs the write lock
        # an open transaction of this same job may hold.
        write = functools.partial(self._write, delivery_id, action_name)
        settings = self.hctx.runtime.settings
        if isinstance(action, InstallationChanged):
            await write(
                lambda s: apply_installation_change(s, action, auto_link=settings.github_auto_link)
            )
        elif isinstance(action, StartPullRequestCycles):
            repo = await repo_at_commit(
                self.hctx, action.installation_id, action.repository, action.sha, action.api_url
            )
            if repo is None:
                return  # unlinked installation, or no usable .aac.yml: no write
            # Every suite already open: no write either.
            await write(lambda s: start_pull_request_cycles(s, repo, action), only_if_done=True)
        elif isinstance(action, CancelPullRequestCycles):
            await write(lambda s: cancel_pull_request_cycles(s, action))
        elif isinstance(action, IngestWorkflowRun):
            fetched = await fetch_workflow_run(self.hctx, action)
            await write(lambda s: ingest_workflow_run(s, fetched, action) if fetched else _none())
        elif isinstance(action, Rerun):
            plan = await plan_rerun(self.hctx, action)
            done = await write(lambda s: apply_rerun(s, plan, action) if plan else _none())
            if plan is not None and done is not None:
                await rerun_workflows(plan, action, done.workflow_runs)

    async def _write(
        self,
        delivery_id: int,
        action_name: str | None,
        apply: Callable[[AsyncSession], Awaitable[T]],
        *,
        only_if_done: bool = False,
    ) -> T:
        """``apply``'s changes and the delivery marked processed, in one transaction.

        With ``only_if_done``, a falsy result (nothing done) leaves the delivery untouched:
        an attribute set on it would be flushed by the commit even then.
        """
        async with self.hctx.runtime.sessions.begin() as session:
            result = await apply(session)
            if only_if_done and not result:
                return result
            # Written last: SQLite takes its write lock at the first change.
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is not None:
                delivery.action = action_name
                delivery.processed_at = utcnow()
        return result


async def _none() -> None:
    return None
