"""A loopback fake of the aac-bot cycles API, recording every request it receives."""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROUTES = (
    ("POST", re.compile(r"^/api/v1/cycles$"), "create"),
    ("POST", re.compile(r"^/api/v1/cycles/(?P<id>\d+)/results$"), "upload"),
    ("POST", re.compile(r"^/api/v1/cycles/(?P<id>\d+)/complete$"), "complete"),
    ("GET", re.compile(r"^/api/v1/cycles/(?P<id>\d+)$"), "get"),
)


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Recorded:
    """One request as the server saw it."""

    route: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def decoded(self) -> bytes:
        """The body with its Content-Encoding undone."""
        if self.headers.get("content-encoding") == "gzip":
            return gzip.decompress(self.body)
        return self.body

    def json(self) -> Any:
        return json.loads(self.decoded)


def _match_route(method: str, path: str) -> tuple[str, re.Match[str]] | None:
    for route_method, pattern, route in ROUTES:
        match = pattern.match(path)
        if match and method == route_method:
            return route, match
    return None


@dataclass
class Forced:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeAac:
    """Scriptable: force responses per route, set the statuses successive GETs report."""

    api_key: str = "aac_live_k3y-do-not-print"
    requests: list[Recorded] = field(default_factory=list)
    forced: dict[str, deque[Forced]] = field(default_factory=dict)
    poll_statuses: deque[str] = field(default_factory=deque)
    final_status: str = "done"
    final_totals: dict[str, int] = field(
        default_factory=lambda: {
            "total": 3,
            "passed": 3,
            "failed": 0,
            "errored": 0,
            "skipped": 0,
            "flaky": 0,
        }
    )
    summary: str | None = "All green."
    # Set both to answer like the real server: the cycle's source, and what publishing
    # recorded (shown once ``published_after`` final GETs have passed).
    source: str | None = None
    published: dict[str, Any] | None = None
    published_after: int = 0
    # Where created cycles say uploads go; None means this server's own URL.
    upload_base: str | None = None
    cycles: dict[str, int] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    # What each completion said, echoed in the cycle JSON as the server does.
    completed: dict[int, dict[str, Any]] = field(default_factory=dict)
    stored: list[tuple[str, bytes]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- control ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def force(
        self,
        route: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
        for _ in range(times):
            self.forced.setdefault(route, deque()).append(Forced(status, raw, headers or {}))

    def of(self, route: str) -> list[Recorded]:
        return [r for r in self.requests if r.route == route]

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- serving ---------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        method = handler.command
        found = _match_route(method, handler.path)
        if found is None:
            self._send(handler, 404, {"error": "not_found", "detail": "no such route"})
            return
        route, match = found
        with self._lock:
            self.requests.append(Recorded(route, method, handler.path, headers, body))
            queue = self.forced.get(route)
            forced = queue.popleft() if queue else None
        if forced is not None:
            self._send_raw(handler, forced.status, forced.body, forced.headers)
            return
        if headers.get("authorization") != f"Bearer {self.api_key}":
            self._send(handler, 401, {"error": "unauthorized", "detail": "unknown API key"})
            return
        recorded = self.requests[-1]
        cycle_id = int(match["id"]) if "id" in match.groupdict() else 0
        with self._lock:
            status, answer = getattr(self, f"_{route}")(recorded, cycle_id)
        self._send(handler, status, answer)

    def _cycle(self, cycle_id: int) -> dict[str, Any]:
        base = self.upload_base or self.url
        status = self.status.get(cycle_id, "collecting")
        final = status in {"done", "infra_error", "cancelled", "superseded"}
        shown: dict[str, Any] = {}
        if self.source is not None:
            shown["source"] = self.source
            ready = final and self.published_after <= 0
            shown["published"] = (self.published or {}) if ready else {}
            if final:
                self.published_after -= 1
        return {
            **shown,
            "id": cycle_id,
            "url": f"{self.url}/api/v1/cycles/{cycle_id}",
            "report_url": f"{self.url}/cycles/{cycle_id}",
            "upload_url": f"{base}/api/v1/cycles/{cycle_id}/results",
            "complete_url": f"{base}/api/v1/cycles/{cycle_id}/complete",
            "status": status,
            "outcome": self.completed.get(cycle_id, {}).get("outcome"),
            "timeout_seconds": self.completed.get(cycle_id, {}).get("timeout_seconds"),
            "totals": self.final_totals if final else {"total": len(self.stored)},
            "summary": self.summary if final else None,
        }

    def _create(self, request: Recorded, _id: int) -> tuple[int, dict[str, Any]]:
        key = request.headers.get("idempotency-key", "")
        if key and key in self.cycles:
            return 200, self._cycle(self.cycles[key])
        cycle_id = len(self.cycles) + 1
        if key:
            self.cycles[key] = cycle_id
        self.status[cycle_id] = "collecting"
        return 201, self._cycle(cycle_id)

    def _upload(self, request: Recorded, _id: int) -> tuple[int, dict[str, Any]]:
        name = request.headers.get("x-filename", "")
        data = request.decoded
        if not data.lstrip().startswith(b"<"):
            return 422, {
                "error": "invalid_file",
                "detail": "not well-formed XML",
                "file": name,
                "line": 1,
                "column": 1,
            }
        self.stored.append((name, data))
        tests = data.count(b"<testcase")
        total = sum(d.count(b"<testcase") for _, d in self.stored)
        return 200, {
            "files": [{"name": name, "format": "junit", "tests": tests}],
            "totals": {"total": total, "passed": total},
        }

    def _complete(self, request: Recorded, cycle_id: int) -> tuple[int, dict[str, Any]]:
        body = request.json()
        if body.get("timeout_seconds") is not None and body.get("outcome") != "timed_out":
            # The real server's answer (bot/api/schemas.py CycleComplete).
            return 422, {
                "error": "invalid_field",
                "detail": "timeout_seconds: Value error, is only for outcome timed_out",
                "field": "timeout_seconds",
            }
        self.completed[cycle_id] = body
        self.status[cycle_id] = (
            self.poll_statuses.popleft() if self.poll_statuses else (self.final_status)
        )
        return 202, self._cycle(cycle_id)

    def _get(self, _request: Recorded, cycle_id: int) -> tuple[int, dict[str, Any]]:
        self.status[cycle_id] = (
            self.poll_statuses.popleft() if self.poll_statuses else self.final_status
        )
        return 200, self._cycle(cycle_id)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        self._send_raw(handler, status, json.dumps(body).encode(), {})

    @staticmethod
    def _send_raw(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
