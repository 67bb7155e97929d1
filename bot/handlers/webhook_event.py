"""The ``webhook_event`` job: parse a stored delivery with its SCM package, then hand the
neutral event to its family's handler, with the organisation and provider it is for."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.events import (
    ChangeClosed,
    ChangeOpened,
    ChangeUpdated,
    Event,
    Ignore,
    InstallationChanged,
    PipelineFinished,
    RerunRequested,
    RunApproved,
    RunRequested,
)
from bot.handlers import approve, change, installation, manual_run, pipeline, rerun
from bot.handlers.context import EventRun, HandlerContext, installation_extra
from bot.worker import PermanentJobError
from providers.context import CiContext
from providers.factory import resolve_provider
from providers.registry import package_for
from storage.delivery_body import BodyFormatError, decode_body
from storage.models import WebhookDelivery
from storage.queue import ClaimedJob
from storage.types import utcnow

log = logging.getLogger("aac.handlers")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Route:
    """An event family's handler; ``scoped`` ones get the organisation and provider."""

    handle: Callable[[EventRun, Any], Awaitable[None]]
    scoped: bool = True


# One table, every SCM: each package's parser produces these neutral events.
ROUTES: dict[type[Event], Route] = {
    ChangeOpened: Route(change.start_cycles),
    ChangeUpdated: Route(change.start_cycles),
    ChangeClosed: Route(change.cancel_cycles),
    PipelineFinished: Route(pipeline.ingest),
    RerunRequested: Route(rerun.handle),
    RunApproved: Route(approve.handle),
    RunRequested: Route(manual_run.handle),
    InstallationChanged: Route(installation.handle, scoped=False),
}


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
            package = package_for(delivery.provider)
            if package is None:
                raise PermanentJobError(f"no SCM package handles {delivery.provider!r} deliveries")
            try:
                payload = json.loads(decode_body(delivery.body))
            except (json.JSONDecodeError, BodyFormatError):
                raise PermanentJobError("delivery body is not JSON") from None
            if not isinstance(payload, dict):
                raise PermanentJobError("delivery body is not a JSON object")
            logins = await package.bot_logins(session, delivery.org_id)
            name, org_id, app_id = delivery.event, delivery.org_id, delivery.app_id
        event = package.parse_event(name, payload, logins)
        action = event.scm_action or None
        log.info("webhook", extra={"event": name, "action": action, "does": type(event).__name__})
        if isinstance(event, Ignore):
            # No write at all: most deliveries are ignored, and on SQLite every write
            # transaction competes with webhook intake for the one writer lock.
            log.info("webhook ignored: %s", event.reason)
            return
        route = ROUTES[type(event)]
        # The SCM is read first (the repository's .aac.yml, artifacts, a commenter's
        # permission), each handler reading the database in short sessions of its own; then
        # one transaction writes; then the SCM is written to. No transaction is open across a
        # network call: on PostgreSQL it would hold its locks that long, and on SQLite a
        # paced SCM write waits for a write slot, a row update that needs the write lock an
        # open transaction of this same job may hold.
        writer = _Writer(self.hctx, delivery_id, action)
        if not route.scoped:
            await route.handle(EventRun(self.hctx, writer, app_id=app_id), event)
            return
        assert not isinstance(event, InstallationChanged)
        runtime = self.hctx.runtime
        async with runtime.sessions() as session:
            scope = await package.scope(session, event, org_id, app_id)
            if scope is None:
                return  # nobody this bot serves (logged by the package): no write
            ctx = CiContext(
                source=event.source,
                host=scope.host,
                repository=event.repository,
                sha=getattr(event, "sha", None) or "",
                extra=installation_extra(event.installation_id),
            )
            provider = await resolve_provider(
                session, runtime.vault, scope.org, ctx, self.hctx.shared
            )
        await route.handle(EventRun(self.hctx, writer, scope, provider, app_id), event)


class _Writer:
    """The job's one write: ``apply``'s changes and the delivery marked processed."""

    def __init__(self, hctx: HandlerContext, delivery_id: int, action: str | None) -> None:
        self.hctx = hctx
        self.delivery_id = delivery_id
        self.action = action

    async def __call__(
        self, apply: Callable[[AsyncSession], Awaitable[T]], *, only_if_done: bool = False
    ) -> T:
        """With ``only_if_done``, a falsy result (nothing done) leaves the delivery untouched:
        an attribute set on it would be flushed by the commit even then."""
        async with self.hctx.runtime.sessions.begin() as session:
            result = await apply(session)
            if only_if_done and not result:
                return result
            # Written last: SQLite takes its write lock at the first change.
            delivery = await session.get(WebhookDelivery, self.delivery_id)
            if delivery is not None:
                delivery.action = self.action
                delivery.processed_at = utcnow()
        return result
