"""``POST /webhooks/github``: verify first, then persist and queue in one group-committed write."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.github_app import AppCache
from bot.runtime import Runtime
from bot.webhooks.github import WebhookRejected, verify_delivery
from bot.webhooks.intake import DeliveryWriter

log = logging.getLogger("aac.webhooks")
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


async def github_webhook(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    apps: AppCache = request.app.state.github_apps
    writer: DeliveryWriter = request.app.state.delivery_writer
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        return JSONResponse({"error": "too_large", "detail": "payload over 25 MB"}, 413)
    body = await request.body()
    secrets = [
        app.webhook_secret.reveal() for app in await apps.get(runtime.sessions, runtime.vault)
    ]
    try:
        delivery = verify_delivery(request.headers, body, secrets)
    except WebhookRejected as exc:
        # Nothing from a rejected body is logged or stored: it may be forged.
        log.info("webhook rejected", extra={"reason": exc.code})
        return JSONResponse({"error": exc.code, "detail": exc.detail}, exc.status)
    if delivery.event == "ping":
        return JSONResponse({"status": "pong"})
    fresh = await writer.submit("github", delivery.delivery_id, delivery.event, delivery.body)
    wake = request.app.state.wake_worker
    if fresh and wake is not None:
        wake()
    return JSONResponse(
        {"status": "accepted" if fresh else "duplicate", "delivery": delivery.delivery_id},
        202 if fresh else 200,
    )


ROUTES = [Route("/webhooks/github", github_webhook, methods=["POST"])]
