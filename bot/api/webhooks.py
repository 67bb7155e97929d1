"""``POST /webhooks/github``: verify first, then persist and queue in one group-committed write.

This is the busiest URL of the service and GitHub gives it 10 s, so it is a bare ASGI app that
the application calls before any routing or middleware: it reads only the headers it needs,
answers forged requests before touching storage, and shares one disk write with every
delivery that arrives meanwhile (bot/webhooks/intake.py).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bot.github_app import AppCache
from bot.log import request_id_var
from bot.runtime import Runtime
from bot.webhooks.github import WebhookRejected, verify_delivery
from bot.webhooks.intake import DeliveryWriter
from bot.webhooks.pacing import IntakeActivity
from bot.webhooks.rejections import RejectionLog

log = logging.getLogger("aac.webhooks")
PATH = "/webhooks/github"
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
# Headers the endpoint reads; everything else GitHub sends is ignored.
_WANTED = frozenset(
    {
        b"content-length",
        b"x-hub-signature-256",
        b"x-github-event",
        b"x-github-delivery",
        b"x-request-id",
    }
)
_JSON_HEADER = (b"content-type", b"application/json")


class GithubWebhookEndpoint:
    """The GitHub webhook receiver as a plain ASGI callable."""

    def __init__(
        self,
        runtime: Runtime,
        apps: AppCache,
        writer: DeliveryWriter,
        wake_worker: Callable[[], Callable[[], None] | None],
        activity: IntakeActivity,
    ) -> None:
        self.runtime = runtime
        self.apps = apps
        self.writer = writer
        self.activity = activity
        self.wake_worker = wake_worker  # read per request: the worker starts after the app
        self.rejections = RejectionLog(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.activity.saw_request()
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED
        }
        request_id = _request_id(headers)
        token = request_id_var.set(request_id)
        try:
            status, payload = await self._handle(headers, receive)
        except Exception:
            log.error("unhandled error in webhook intake", exc_info=True)
            status, payload = (
                500,
                {
                    "error": "internal",
                    "detail": "internal error; the server log has the request id",
                },
            )
        finally:
            request_id_var.reset(token)
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    _JSON_HEADER,
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(
        self, headers: dict[str, str], receive: Receive
    ) -> tuple[int, dict[str, Any]]:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
            return 413, {"error": "too_large", "detail": "payload over 25 MB"}
        body = await _read_body(receive)
        if body is None:
            return 413, {"error": "too_large", "detail": "payload over 25 MB"}
        runtime = self.runtime
        secrets = [
            app.webhook_secret.reveal()
            for app in await self.apps.get(runtime.sessions, runtime.vault)
        ]
        try:
            delivery = verify_delivery(headers, body, secrets)
        except WebhookRejected as exc:
            # Nothing from a rejected body is logged or stored: it may be forged.
            self.rejections.record(exc.code)
            return exc.status, {"error": exc.code, "detail": exc.detail}
        if delivery.event == "ping":
            return 200, {"status": "pong"}
        self.activity.writing += 1
        try:
            fresh = await self.writer.submit(
                "github", delivery.delivery_id, delivery.event, delivery.body
            )
        finally:
            self.activity.writing -= 1
        if fresh and (wake := self.wake_worker()) is not None:
            wake()
        return (202 if fresh else 200), {
            "status": "accepted" if fresh else "duplicate",
            "delivery": delivery.delivery_id,
        }


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None once it grows past the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > MAX_WEBHOOK_BYTES:
                return None
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _request_id(headers: dict[str, str]) -> str:
    """The caller's X-Request-Id when sane, else GitHub's delivery GUID, else a random id."""
    for candidate in (headers.get("x-request-id", ""), headers.get("x-github-delivery", "")):
        if 0 < len(candidate) <= 64 and candidate.replace("-", "").isalnum():
            return candidate
    return os.urandom(8).hex()


class _Routed:
    """The endpoint behind the router. The application answers POST before routing (see
    bot/app.py); this route still gives other methods their 405."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint: GithubWebhookEndpoint = scope["app"].state.github_webhook_endpoint
        await endpoint(scope, receive, send)


ROUTES = [Route(PATH, _Routed(), methods=["POST"])]
