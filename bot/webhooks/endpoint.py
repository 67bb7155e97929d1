"""``POST /webhooks/<scm>[/{org}]``: verify first, then persist and queue in one
group-committed write, for every SCM package alike.

These are the busiest URLs of the service and SCMs give them ~10 s, so each is a bare ASGI
app that the application calls before any routing or middleware: it reads only the headers
its package's verification needs, answers forged requests before touching storage, and
shares one disk write with every delivery that arrives meanwhile (bot/webhooks/intake.py).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bot.log import request_id_var
from bot.webhooks.intake import DeliveryWriter, WriterClosed
from bot.webhooks.pacing import IntakeActivity
from bot.webhooks.rejections import RejectionLog
from providers.inbound import WebhookRejected
from providers.registry import WebhookReceiver, WebhookRoute

log = logging.getLogger("aac.webhooks")
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB; GitLab at 25 MB too
_ALWAYS = frozenset({b"content-length", b"x-request-id"})
_JSON_HEADER = (b"content-type", b"application/json")


class WebhookEndpoint:
    """One SCM's webhook receiver as a plain ASGI callable (the org slug, when its URL has
    one, comes from the application's dispatch)."""

    def __init__(
        self,
        source: str,
        receiver: WebhookReceiver,
        writer: DeliveryWriter,
        wake_worker: Callable[[], Callable[[], None] | None],
        activity: IntakeActivity,
    ) -> None:
        self.source = source
        self.receiver = receiver
        self.writer = writer
        self.activity = activity
        self.wake_worker = wake_worker  # read per request: the worker starts after the app
        self.rejections = RejectionLog(log)
        self._wanted = _ALWAYS | receiver.headers

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, org_slug: str | None = None
    ) -> None:
        wanted = self._wanted
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in wanted
        }
        request_id = _request_id(headers, self.receiver.delivery_header)
        token = request_id_var.set(request_id)
        try:
            status, payload = await self._handle(headers, receive, org_slug)
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
        self, headers: dict[str, str], receive: Receive, org_slug: str | None
    ) -> tuple[int, dict[str, Any]]:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
            return 413, {"error": "too_large", "detail": "payload over 25 MB"}
        body = await _read_body(receive)
        if body is None:
            return 413, {"error": "too_large", "detail": "payload over 25 MB"}
        try:
            delivery = await self.receiver.verify(headers, body, org_slug)
        except WebhookRejected as exc:
            # Nothing from a rejected body is logged or stored: it may be forged.
            self.rejections.record(exc.code)
            return exc.status, {"error": exc.code, "detail": exc.detail}
        # Only verified deliveries make the worker yield: forged ones are answered above at
        # a fraction of the cost and must not be able to slow real work down.
        self.activity.saw_request()
        if delivery.event == "ping":
            return 200, {"status": "pong"}
        self.activity.writing += 1
        try:
            fresh = await self.writer.submit(
                self.source,
                delivery.delivery_id,
                delivery.event,
                delivery.body,
                delivery.org_id,
                delivery.app_id,
            )
        except WriterClosed:
            return 503, {
                "error": "shutting_down",
                "detail": "the bot is restarting; the delivery was not stored, redeliver it",
            }
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


def _request_id(headers: dict[str, str], delivery_header: str) -> str:
    """The caller's X-Request-Id when sane, else the SCM's delivery id, else a random id."""
    for candidate in (headers.get("x-request-id", ""), headers.get(delivery_header, "")):
        if 0 < len(candidate) <= 64 and candidate.replace("-", "").isalnum():
            return candidate
    return os.urandom(8).hex()


class WebhookEndpoints:
    """Every SCM's endpoint by URL; the application answers their POSTs before routing."""

    def __init__(self) -> None:
        self.exact: dict[str, WebhookEndpoint] = {}
        self.per_org: dict[str, WebhookEndpoint] = {}

    def add(self, route: WebhookRoute, endpoint: WebhookEndpoint) -> None:
        (self.per_org if route.per_org else self.exact)[route.path.rstrip("/")] = endpoint

    def find(self, path: str) -> tuple[WebhookEndpoint, str | None] | None:
        """The endpoint for a request path and the organisation slug it names, if any."""
        endpoint = self.exact.get(path)
        if endpoint is not None:
            return endpoint, None
        prefix, _, slug = path.rpartition("/")
        endpoint = self.per_org.get(prefix)
        if endpoint is not None and slug:
            return endpoint, slug
        return None

    def all(self) -> list[WebhookEndpoint]:
        return [*self.exact.values(), *self.per_org.values()]

    def routes(self) -> list[Route]:
        """Router entries, so that other methods on these URLs get their 405."""
        exact = [Route(path, _Routed(), methods=["POST"]) for path in self.exact]
        per_org = [Route(f"{path}/{{org}}", _Routed(), methods=["POST"]) for path in self.per_org]
        return [*exact, *per_org]


class _Routed:
    """An endpoint behind the router. The application answers POST before routing (see
    bot/app.py); this route still gives other methods their 405."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoints: WebhookEndpoints = scope["app"].state.webhook_endpoints
        found = endpoints.find(scope["path"])
        assert found is not None
        await found[0](scope, receive, send, found[1])
