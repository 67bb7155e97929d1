"""HTTP client for the cycles API: retries transient failures, types the rest."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from bot.reporter.retry import RetryPolicy, is_retryable_status, next_delay, parse_retry_after

# Uploads of large reports are slow on shared runners; connecting should not be.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=120.0, pool=10.0)


class ReportError(Exception):
    """Base of the client's errors; messages never carry the API key."""


class ServerUnavailable(ReportError):
    """The server could not be reached or kept failing (network, 5xx, 429) past the retries."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A 4xx the retrying cannot fix, with the server's JSON reason."""

    status: int
    error: str
    detail: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def describe(self) -> str:
        """`detail (error, HTTP 422) at file:line:column` as far as known."""
        where = ""
        if self.file or self.line is not None:
            where = " at " + ":".join(
                str(p) for p in (self.file, self.line, self.column) if p is not None
            )
        return f"{self.detail} ({self.error}, HTTP {self.status}){where}"


class ApiRejected(ReportError):
    """The server refused the request (401, 403, 404, 413, 422, ...)."""

    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection
        super().__init__(rejection.describe())


def display_url(url: str) -> str:
    """The URL without any user:password@ part, fit to print."""
    parts = urlsplit(url)
    if parts.hostname is None or "@" not in parts.netloc:
        return url
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def server_url_problem(server: str) -> str | None:
    """Why ``server`` is no usable base URL (``127.0.0.1:8000`` has no scheme), or None."""
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https:// (e.g. https://aac.example.com)"
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "its port is not a number"
    if not parts.hostname:
        return "it names no host"
    if parts.query or parts.fragment:
        return "it must be the base URL, without ?query or #fragment"
    return None


def _rejection(response: httpx.Response) -> Rejection:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        return Rejection(response.status_code, response.reason_phrase or "error", text or "-")

    def _opt_int(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    file = body.get("file")
    return Rejection(
        status=response.status_code,
        error=str(body.get("error") or response.reason_phrase or "error"),
        detail=str(body.get("detail") or "-"),
        file=file if isinstance(file, str) else None,
        line=_opt_int(body.get("line")),
        column=_opt_int(body.get("column")),
    )


class CyclesClient:
    """The four calls `aac report` makes, against one server with one API key."""

    def __init__(
        self,
        server: str,
        api_key: str,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = server.rstrip("/") + "/"
        self._origin = urlsplit(self._base)
        self._policy = policy or RetryPolicy()
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "aac-report"},
            timeout=DEFAULT_TIMEOUT,
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> CyclesClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    def resolve(self, url: str) -> str:
        """An API URL from the server, pinned to --server's origin so the key goes nowhere else."""
        target = urlsplit(urljoin(self._base, url))
        return urlunsplit(target._replace(scheme=self._origin.scheme, netloc=self._origin.netloc))

    async def create_cycle(self, context: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """POST /api/v1/cycles; the cycle JSON (new or the one the key already made)."""
        response = await self._send(
            "POST",
            self.resolve("api/v1/cycles"),
            json=context,
            headers={"Idempotency-Key": idempotency_key},
        )
        return _json_object(response)

    async def upload(self, upload_url: str, name: str, body: bytes, key: str) -> dict[str, Any]:
        """POST one gzip-compressed result file to the cycle's upload URL; ``key`` makes a
        retry (after a timeout whose first try landed) replace rather than add."""
        response = await self._send(
            "POST",
            self.resolve(upload_url),
            content=body,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Encoding": "gzip",
                "X-Filename": name,
                "Idempotency-Key": key,
            },
        )
        return _json_object(response)

    async def complete(
        self,
        complete_url: str,
        outcome: str | None,
        exit_code: int | None,
        *,
        timeout_seconds: int | None = None,
    ) -> dict[str, Any]:
        """POST the cycle's completion; the cycle JSON."""
        body: dict[str, Any] = {"outcome": outcome, "exit_code": exit_code}
        if timeout_seconds is not None:  # only then: a server before timeouts refuses the key
            body["timeout_seconds"] = timeout_seconds
        response = await self._send("POST", self.resolve(complete_url), json=body)
        return _json_object(response)

    async def get_cycle(self, cycle_id: str) -> dict[str, Any]:
        """GET /api/v1/cycles/{id}."""
        response = await self._send("GET", self.resolve(f"api/v1/cycles/{cycle_id}"))
        return _json_object(response)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        policy = self._policy
        started = policy.clock()
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                # Only the class name: some transport errors quote the request.
                reason = f"{type(exc).__name__} talking to {display_url(url)}"
            else:
                if response.status_code < 400:
                    return response
                if not is_retryable_status(response.status_code):
                    raise ApiRejected(_rejection(response))
                reason = f"HTTP {response.status_code} from {display_url(url)}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = next_delay(attempt, policy, policy.clock() - started, retry_after)
            if delay is None:
                tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
                raise ServerUnavailable(f"{reason} ({tries})")
            await policy.sleep(delay)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ServerUnavailable(
            f"unexpected non-JSON answer (HTTP {response.status_code}) from "
            f"{display_url(str(response.request.url))}; is --server the aac-bot URL?"
        )
    return body
