"""The Starlette application factory: every URL in one list, everything passed in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.api import cycles as cycles_api
from bot.api import health, openapi, report_page, runner_log, runners
from bot.api.errors import ApiError, api_error_handler
from bot.api.ratelimit import RateLimiter
from bot.jobs import periodic_jobs
from bot.log import request_id_var
from bot.runtime import Runtime
from bot.webhooks.endpoint import WebhookEndpoint, WebhookEndpoints
from bot.webhooks.intake import DeliveryWriter
from bot.webhooks.pacing import IntakeActivity, IntakeFirstPacer
from bot.worker import Handler, Worker, WorkerConfig, listen_dsn_for
from providers.factory import ProviderShared
from providers.registry import packages
from storage.write_slots import WriteSlots

log = logging.getLogger("aac.app")
WEBHOOKS_PREFIX = "/webhooks/"


class RequestIdMiddleware:
    """Tag every request's logs with an id (the caller's X-Request-Id when it sends a sane one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if given.isalnum() and len(given) <= 64 else uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class BotApp(Starlette):
    """Starlette, except that webhook deliveries skip routing and middleware: they are the
    busiest requests and each SCM's endpoint sets its own request id and error shape."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].startswith(WEBHOOKS_PREFIX)
            and (found := self.state.webhook_endpoints.find(scope["path"])) is not None
        ):
            await found[0](scope, receive, send, found[1])
            return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's ServerErrorMiddleware (which add_middleware cannot reach), so an
        # unhandled error's log line and its 500 answer carry the request id as well.
        return RequestIdMiddleware(super().build_middleware_stack())


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return JSONResponse(
        {"error": "internal", "detail": "internal error; the server log has the request id"},
        status_code=500,
    )


async def _not_found(request: Request, _exc: Exception) -> Response:
    return JSONResponse(
        {"error": "not_found", "detail": f"no route {request.method} {request.url.path}"},
        status_code=404,
    )


async def _method_not_allowed(request: Request, _exc: Exception) -> Response:
    return JSONResponse(
        {"error": "method_not_allowed", "detail": f"{request.method} not allowed here"},
        status_code=405,
    )


def create_app(
    runtime: Runtime,
    *,
    handlers: Mapping[str, Handler] | None = None,
    run_worker: bool = False,
) -> BotApp:
    """The web app; with ``run_worker`` it also runs a worker in-process (``aac serve``)."""
    settings = runtime.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        if run_worker:
            worker = Worker(
                runtime.sessions,
                handlers or {},
                WorkerConfig(
                    concurrency=settings.worker_concurrency,
                    lease_seconds=settings.job_lease_seconds,
                    poll_interval=settings.worker_poll_interval,
                    periodic=periodic_jobs(settings),
                ),
                listen_dsn=listen_dsn_for(settings.database_url),
                pacer=IntakeFirstPacer(app.state.intake_activity),
            )
            app.state.wake_worker = worker.wake
            task = asyncio.create_task(worker.run(stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await app.state.delivery_writer.close()
            await app.state.provider_shared.close()
            for endpoint in app.state.webhook_endpoints.all():
                endpoint.rejections.flush()
            await runtime.close()

    delivery_writer = DeliveryWriter(
        runtime.sessions, runtime.engine.dialect.name, sqlite_path=settings.sqlite_path
    )
    intake_activity = IntakeActivity()
    # One endpoint per SCM package, each verifying with its own receiver.
    endpoints = WebhookEndpoints()
    for package in packages():
        route = package.webhook
        endpoints.add(
            route,
            WebhookEndpoint(
                package.source,
                route.receiver(runtime.sessions, runtime.vault),
                delivery_writer,
                wake_worker=lambda: app.state.wake_worker,
                activity=intake_activity,
            ),
        )
    routes = [
        *health.ROUTES,
        *openapi.ROUTES,
        *cycles_api.ROUTES,
        *endpoints.routes(),
        *report_page.ROUTES,
        *runners.ROUTES,
        *runner_log.ROUTES,
    ]
    app = BotApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error_handler,
            404: _not_found,
            405: _method_not_allowed,
            Exception: _unexpected,
        },
    )
    app.state.runtime = runtime
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.auth_failure_limiter = RateLimiter(settings.auth_failures_per_minute)
    app.state.wake_worker = None
    app.state.delivery_writer = delivery_writer
    app.state.intake_activity = intake_activity
    app.state.webhook_endpoints = endpoints
    # For the API's manual start, which reads .aac.yml through the SCM; its writes are paced
    # with every other process's through the database.
    app.state.provider_shared = ProviderShared.paced(WriteSlots(runtime.engine))
    return app
