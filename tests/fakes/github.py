"""A fake GitHub REST API on 127.0.0.1 for driving the real SDKs in tests.

Serves what the bot uses (App JWT -> installation tokens, check runs, issue comments, commit
statuses, contents, workflow artifacts, collaborator permission; the App manifest flow, the App's
webhook configuration and its deliveries), keeps its state in memory for
tests to inspect, sends GitHub's rate-limit and ETag headers, injects faults on demand, and
validates every request body against GitHub's official OpenAPI description (an extract in
``github_openapi/request_bodies.json``). An invalid body gets GitHub's 422 and is recorded in
``validation_errors`` so a fixture can fail the test.

GitHub Enterprise Server is served too: every route also answers under ``/api/v3``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DOCS = "https://docs.github.com/rest"
GHES_PREFIX = "/api/v3"
SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from "
    "content creation. Please retry your request again later. If you reach out to GitHub "
    "Support for help, please include the request ID {request_id}."
)
SECONDARY_LIMIT_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
RATE_LIMIT = 5000
COMMENT_MAX_CHARS = 65_536
STATUS_DESCRIPTION_MAX_CHARS = 140
# GitHub's limit for a recursive tree listing (it also stops at 7 MB).
TREE_MAX_ENTRIES = 100_000
# A manifest flow's code is good for one conversion within an hour.
MANIFEST_CODE_TTL = timedelta(hours=1)
# GitHub sends these to every App and refuses them as manifest default_events.
ALWAYS_DELIVERED_EVENTS = frozenset({"installation", "installation_repositories"})
APP_FORM_PATH = re.compile(r"^(?:/organizations/(?P<org>[^/]+))?/settings/apps/new$")
SCHEMAS_FILE = Path(__file__).with_name("github_openapi") / "request_bodies.json"

FaultKind = Literal[
    "server_error",
    "secondary_rate_limit",
    "primary_rate_limit",
    "not_found",
    "bad_credentials",
    "slow",
]


@cache
def request_body_schemas() -> dict[str, Any]:
    """``"METHOD /path/{template}"`` -> {operationId, required, schema}, from the extract."""
    data: dict[str, Any] = json.loads(SCHEMAS_FILE.read_text(encoding="utf-8"))
    data.pop("_source", None)
    return data


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_token_factory() -> str:
    """An installation token shaped like GitHub's (``ghs_`` + 36 characters)."""
    alphabet = string.ascii_letters + string.digits
    return "ghs_" + "".join(secrets.choice(alphabet) for _ in range(36))


# ---------------------------------------------------------------------------------------
# Recorded data
# ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake saw it (time is ``time.monotonic()`` at arrival)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float
    status: int = 0
    credential: str = "none"  # "jwt", "installation", "pat" or "none"
    prefix: str = ""  # "/api/v3" when addressed GitHub Enterprise Server-style


# GitHub's legacy `permission` for each built-in role (custom roles report their base role's).
_LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}


@dataclass(slots=True)
class Fault:
    """Make the next ``times`` requests matching ``method`` and ``path`` (a regex) fail."""

    kind: FaultKind
    method: str | None = None
    path: str = ".*"
    times: int = 1
    status: int | None = None  # e.g. 429 instead of 403, or 503 instead of 502
    retry_after: int = 60  # secondary: retry-after header; primary: seconds until reset
    delay: float = 1.0  # "slow": seconds before answering
    late: bool = False  # "slow": handle the request at once, delay only its answer
    after: int = 0  # let this many matching requests through first
    applied: bool = False  # "server_error" only: apply the request, then lose the response

    def fires(self, method: str, path: str) -> bool:
        """Whether this request gets the fault (consumes one use when it does)."""
        if self.times <= 0 or self.method not in (None, method):
            return False
        if not re.fullmatch(self.path, path):
            return False
        if self.after > 0:
            self.after -= 1
            return False
        self.times -= 1
        return True


@dataclass(slots=True)
class Comment:
    id: int
    repo: str
    issue: int
    user: str
    body: str
    created_at: str
    updated_at: str


@dataclass(slots=True)
class CheckRun:
    id: int
    repo: str
    head_sha: str
    name: str
    status: str
    conclusion: str | None
    external_id: str | None
    details_url: str | None
    started_at: str
    completed_at: str | None
    output: dict[str, Any]
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    # Every state a create or update set, in order (a repeated state is a repeated write).
    states: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Principal:
    kind: Literal["jwt", "installation", "pat", "none"]
    key: str = ""  # what rate limits are counted against
    login: str = ""
    installation_id: int | None = None
    account: str | None = None


@dataclass(slots=True)
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    media_type: str = "application/json; charset=utf-8"


class _Rejected(Exception):
    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _error(status: int, message: str, **extra: Any) -> _Rejected:
    return _Rejected(_Reply(status, {"message": message, "documentation_url": DOCS, **extra}))


@dataclass(slots=True)
class _Call:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    principal: _Principal
    base_url: str  # scheme://host:port[/api/v3]


Handler = Callable[[_Call], _Reply]


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: Handler
    auth: Literal["jwt", "token", "none"]


def _route(
    method: str, template: str, handler: Handler, auth: Literal["jwt", "token", "none"] = "token"
) -> _Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template).replace(
        "(?P<path>[^/]+)", "(?P<path>.+)"
    )
    return _Route(method, re.compile(f"^{regex}$"), template, handler, auth)


# ---------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------
class FakeGithub:
    """GitHub's REST API in memory, served on 127.0.0.1 from a background thread."""

    def __init__(
        self,
        *,
        app_id: int,
        app_public_key: str,
        app_slug: str = "aac-test",
        installations: Mapping[int, str] | None = None,
        pats: Mapping[str, str] | None = None,
        token_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self.app_id = app_id
        self.app_slug = app_slug
        self._public_key = app_public_key
        self._installation_accounts = dict(installations or {})
        self._pat_logins = dict(pats or {})
        self.token_ttl = token_ttl
        self.token_factory: Callable[[], str] = default_token_factory
        self._lock = threading.RLock()
        self._routes = self._build_routes()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The api.github.com-style base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ghes_url(self) -> str:
        """A GitHub Enterprise Server-style base URL (``.../api/v3``)."""
        return self.url + GHES_PREFIX

    def start(self) -> FakeGithub:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._endpoint,
                    methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                )
            ]
        )
        config = uvicorn.Config(app, log_level="warning", lifespan="off", http="h11")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake GitHub did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def reset(self) -> None:
        """Forget all state (between tests); configuration stays."""
        with self._lock:
            self.requests: list[RecordedRequest] = []
            self.validation_errors: list[str] = []
            self.faults: list[Fault] = []
            self.comments: dict[int, Comment] = {}
            self.check_runs: dict[int, CheckRun] = {}
            self.statuses: list[dict[str, Any]] = []
            self.minted_tokens: list[str] = []
            # token -> the scope asked for when minting it (repositories, permissions)
            self.token_scopes: dict[str, dict[str, Any]] = {}
            self.contents: dict[tuple[str, str, str], bytes] = {}
            self.trees: dict[tuple[str, str], tuple[str, ...]] = {}
            self.tree_max_entries = TREE_MAX_ENTRIES
            self.artifacts: dict[tuple[str, int], list[dict[str, Any]]] = {}
            self.permissions: dict[tuple[str, str], tuple[str, str]] = {}
            self.installations = dict(self._installation_accounts)
            # installation id -> when it was suspended (tokens are refused meanwhile)
            self.suspended: dict[int, datetime] = {}
            # installation id -> the ``owner/name``s it covers (GET /installation/repositories)
            self.installation_repositories: dict[int, list[str]] = {}
            self.pats = dict(self._pat_logins)
            self.token_factory = default_token_factory
            self._tokens: dict[str, tuple[int, datetime]] = {}
            self._used: dict[str, int] = {}
            self._reset_epoch = int(time.time()) + 3600
            self._blobs: dict[str, bytes] = {}
            self.reruns: list[tuple[str, int]] = []
            self.app_permissions = {"checks": "write", "issues": "write", "statuses": "write"}
            self.app_events = ["pull_request", "check_run", "workflow_run"]
            # The App's webhook (GET/PATCH /app/hook/config); the secret is write-only.
            self.hook_config: dict[str, str] = {
                "url": "https://old.example.com/hook",
                "content_type": "form",
                "secret": "",
                "insecure_ssl": "0",
            }
            # Webhook deliveries, newest first, as GET /app/hook/deliveries lists them.
            self.deliveries: list[dict[str, Any]] = []
            self.redelivery_status = 200  # what the bot answers a redelivery, as GitHub logs it
            # Manifest flow: code -> (issued at, manifest, used); what the conversion returns.
            self.manifest_codes: dict[str, tuple[datetime, dict[str, Any], bool]] = {}
            self.manifest_code_ttl = MANIFEST_CODE_TTL
            self.manifest_pem = ""
            self.created_apps: list[dict[str, Any]] = []
            self._next_id = 1000
            self._request_serial = 0

    # -- test helpers ---------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def expire_tokens(self) -> None:
        """Make every installation token minted so far expired (GitHub answers 401)."""
        with self._lock:
            past = datetime.now(UTC) - timedelta(seconds=1)
            self._tokens = {tok: (inst, past) for tok, (inst, _) in self._tokens.items()}

    def add_comment(self, repo: str, issue: int, user: str, body: str) -> int:
        with self._lock:
            now = _iso(datetime.now(UTC))
            comment = Comment(self._new_id(), repo, issue, user, body, now, now)
            self.comments[comment.id] = comment
            return comment.id

    def add_contents(self, repo: str, path: str, data: bytes, ref: str = "main") -> None:
        with self._lock:
            self.contents[(repo, path, ref)] = data

    def add_tree(self, repo: str, sha: str, paths: Iterable[str]) -> None:
        """The files of ``repo`` at commit ``sha``; directories are derived from the paths."""
        with self._lock:
            self.trees[(repo, sha)] = tuple(paths)

    def add_artifact(self, repo: str, run_id: int, name: str, zip_bytes: bytes) -> int:
        with self._lock:
            artifact_id = self._new_id()
            self.artifacts.setdefault((repo, run_id), []).append(
                {"id": artifact_id, "name": name, "data": zip_bytes}
            )
            return artifact_id

    def set_installation_repositories(self, installation_id: int, repos: list[str]) -> None:
        """The repositories an installation covers, as ``GET /installation/repositories``
        lists them to its tokens."""
        with self._lock:
            self.installation_repositories[installation_id] = list(repos)

    def suspend(self, installation_id: int) -> None:
        """Suspend an installation: GitHub still describes it, but mints no token for it."""
        with self._lock:
            self.suspended[installation_id] = datetime.now(UTC)

    def uninstall(self, installation_id: int) -> None:
        """Forget an installation: every call naming it answers 404."""
        with self._lock:
            self.installations.pop(installation_id, None)
            self.suspended.pop(installation_id, None)

    def set_permission(self, repo: str, user: str, role: str, base: str | None = None) -> None:
        """Give ``user`` a repository role; a custom role needs the built-in ``base`` it extends."""
        with self._lock:
            self.permissions[(repo, user)] = (role, _LEGACY_PERMISSION.get(role) or base or "none")

    def add_delivery(
        self,
        guid: str,
        *,
        status_code: int,
        delivered_at: datetime,
        event: str = "pull_request",
        redelivery: bool = False,
    ) -> int:
        """Log a delivery attempt; the list stays newest first, as GitHub returns it."""
        with self._lock:
            delivery_id = self._new_id()
            self.deliveries.append(
                {
                    "id": delivery_id,
                    "guid": guid,
                    "delivered_at": _iso(delivered_at),
                    "redelivery": redelivery,
                    "duration": 0.05,
                    "status": "OK" if 200 <= status_code < 300 else "Service Unavailable",
                    "status_code": status_code,
                    "event": event,
                    "action": "opened",
                    "installation_id": next(iter(self.installations), None),
                    "repository_id": 1296269,
                    "throttled_at": None,
                }
            )
            self.deliveries.sort(key=lambda d: (d["delivered_at"], d["id"]), reverse=True)
            return delivery_id

    def issue_comments(self, repo: str, issue: int) -> list[Comment]:
        with self._lock:
            return [c for c in self.comments.values() if c.repo == repo and c.issue == issue]

    def writes(self) -> list[RecordedRequest]:
        """Recorded POST/PATCH/PUT/DELETE requests, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.method != "GET"]

    # -- HTTP -----------------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        path = "/" + request.path_params["path"]
        base = f"{request.url.scheme}://{request.url.netloc}"
        prefix = ""
        if path == GHES_PREFIX or path.startswith(GHES_PREFIX + "/"):
            path = path[len(GHES_PREFIX) :] or "/"
            prefix = GHES_PREFIX
            base += GHES_PREFIX
        form = APP_FORM_PATH.match(path)
        if form and not prefix and request.method == "POST":
            return await self._register_app_form(request, form.group("org"))
        slow = self._take_slow_fault(request.method, path)
        if slow is not None and not slow.late:
            await asyncio.sleep(slow.delay)
        reply = self._handle(
            request.method, path, dict(request.query_params), request.headers, raw, base, prefix
        )
        if slow is not None and slow.late:
            await asyncio.sleep(slow.delay)  # the answer, already computed, is slow to arrive
        if reply.raw is not None:
            return Response(
                reply.raw,
                status_code=reply.status,
                headers=reply.headers,
                media_type=reply.media_type,
            )
        if reply.body is None:
            return Response(status_code=reply.status, headers=reply.headers)
        content = json.dumps(reply.body).encode()
        return Response(
            content, status_code=reply.status, headers=reply.headers, media_type=reply.media_type
        )

    def _handle(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        raw: bytes,
        base_url: str,
        prefix: str = "",
    ) -> _Reply:
        with self._lock:
            self._request_serial += 1
            body: Any = None
            principal = _Principal("none")
            record = RecordedRequest(method, path, query, None, time.monotonic(), prefix=prefix)
            self.requests.append(record)
            try:
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise _error(400, "Problems parsing JSON") from None
                record.body = body
                route, params = self._match(method, path)
                principal = self._authenticate(route, headers)
                record.credential = principal.kind
                self._count(principal)
                lost = self._apply_faults(method, path, principal)
                self._validate(route, method, body, raw)
                reply = route.handler(_Call(method, path, params, query, body, principal, base_url))
                if lost is not None:
                    reply = lost
            except _Rejected as rejected:
                reply = rejected.reply
            reply = self._finish(method, headers, reply, principal)
            record.status = reply.status
            return reply

    def _finish(
        self, method: str, headers: Mapping[str, str], reply: _Reply, principal: _Principal
    ) -> _Reply:
        out = dict(reply.headers)
        out.setdefault("x-github-request-id", f"FAKE:{self._request_serial:08X}")
        out.setdefault("x-github-api-version-selected", "2022-11-28")
        if principal.key and "x-ratelimit-remaining" not in out:
            used = self._used.get(principal.key, 0)
            out.update(self._rate_headers(RATE_LIMIT - used, used))
        if method == "GET" and reply.status == 200 and reply.raw is None:
            content = json.dumps(reply.body, sort_keys=True).encode()
            # GitHub's ETags vary with the credential (Vary: Authorization).
            etag = 'W/"' + hashlib.sha256(content + principal.key.encode()).hexdigest()[:40] + '"'
            out["etag"] = etag
            out["vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
            if headers.get("if-none-match") == etag:
                # Conditional hits do not count against the rate limit.
                if principal.key:
                    self._used[principal.key] = self._used.get(principal.key, 1) - 1
                    used = self._used[principal.key]
                    out.update(self._rate_headers(RATE_LIMIT - used, used))
                return _Reply(304, None, out)
        return _Reply(reply.status, reply.body, out, reply.raw, reply.media_type)

    def _rate_headers(self, remaining: int, used: int) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(remaining, 0)),
            "x-ratelimit-reset": str(self._reset_epoch),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
        }

    def _match(self, method: str, path: str) -> tuple[_Route, dict[str, str]]:
        for route in self._routes:
            if route.method == method:
                found = route.pattern.match(path)
                if found:
                    return route, found.groupdict()
        raise _error(404, "Not Found")

    def _authenticate(self, route: _Route, headers: Mapping[str, str]) -> _Principal:
        if route.auth == "none":
            return _Principal("none")
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        credential = credential.strip()
        if scheme.lower() not in ("bearer", "token") or not credential:
            raise _error(401, "Requires authentication")
        if route.auth == "jwt":
            self._verify_jwt(credential)
            return _Principal("jwt", key=f"app:{self.app_id}", login=f"{self.app_slug}[bot]")
        if credential in self._tokens:
            installation_id, expires = self._tokens[credential]
            if datetime.now(UTC) >= expires:
                raise _error(401, "Bad credentials")
            return _Principal(
                "installation",
                key=f"installation:{installation_id}",
                login=f"{self.app_slug}[bot]",
                installation_id=installation_id,
                account=self.installations.get(installation_id),
            )
        if credential in self.pats:
            login = self.pats[credential]
            return _Principal("pat", key=f"user:{login}", login=login)
        raise _error(401, "Bad credentials")

    def _verify_jwt(self, token: str) -> None:
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
            )
        except jwt.PyJWTError:
            raise _error(401, "A JSON web token could not be decoded") from None
        if str(claims["iss"]) != str(self.app_id):
            raise _error(401, "A JSON web token could not be decoded")
        if int(claims["exp"]) - int(claims["iat"]) > 600:
            raise _error(401, "'Expiration time' claim ('exp') is too far in the future")

    def _count(self, principal: _Principal) -> None:
        if principal.key:
            self._used[principal.key] = self._used.get(principal.key, 0) + 1

    def _take_slow_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.kind == "slow" and fault.fires(method, path):
                    return fault
        return None

    def _apply_faults(self, method: str, path: str, principal: _Principal) -> _Reply | None:
        """Raise the first fault that fires; an ``applied`` one is returned to answer later."""
        for fault in self.faults:
            if fault.kind == "slow" or not fault.fires(method, path):
                continue
            if fault.kind == "server_error":
                reply = _Reply(fault.status or 502, {"message": "Server Error"})
                if fault.applied:
                    return reply
                raise _Rejected(reply)
            if fault.kind == "not_found":
                raise _error(fault.status or 404, "Not Found")
            if fault.kind == "bad_credentials":  # a revoked token or a suspended App
                raise _error(fault.status or 401, "Bad credentials")
            used = self._used.get(principal.key, 0)
            if fault.kind == "secondary_rate_limit":
                headers = self._rate_headers(RATE_LIMIT - used, used)
                headers["retry-after"] = str(fault.retry_after)
                message = SECONDARY_LIMIT_MESSAGE.format(
                    request_id=f"FAKE:{self._request_serial:08X}"
                )
                raise _Rejected(
                    _Reply(
                        fault.status or 403,
                        {"message": message, "documentation_url": SECONDARY_LIMIT_DOCS},
                        headers,
                    )
                )
            # primary_rate_limit
            headers = self._rate_headers(0, RATE_LIMIT)
            headers["x-ratelimit-reset"] = str(int(time.time()) + fault.retry_after)
            who = (
                f"installation ID {principal.installation_id}"
                if principal.installation_id is not None
                else principal.login or "anonymous"
            )
            raise _Rejected(
                _Reply(
                    fault.status or 403,
                    {
                        "message": f"API rate limit exceeded for {who}.",
                        "documentation_url": DOCS
                        + "/overview/rate-limits-for-the-rest-api#about-primary-rate-limits",
                    },
                    headers,
                )
            )
        return None

    def _validate(self, route: _Route, method: str, body: Any, raw: bytes) -> None:
        spec = request_body_schemas().get(f"{method} {route.template}")
        if spec is None:
            return
        if not raw:
            if spec["required"]:
                self.validation_errors.append(f"{method} {route.template}: missing body")
                raise _error(400, "Problems parsing JSON")
            return
        validator = jsonschema.Draft7Validator(
            spec["schema"], format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
        )
        problems = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if problems:
            details = [
                f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                for e in problems
            ]
            self.validation_errors.append(f"{method} {route.template}: " + "; ".join(details))
            raise _error(422, "Invalid request.\n\n" + "\n".join(details))

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _repo(self, call: _Call) -> str:
        """``owner/repo`` from the path, 404 unless the credential can see it."""
        owner, repo = call.params["owner"], call.params["repo"]
        principal = call.principal
        if principal.kind == "installation" and (principal.account or "").lower() != owner.lower():
            raise _error(404, "Not Found")
        return f"{owner}/{repo}"

    # -- routes ---------------------------------------------------------------------------
    def _build_routes(self) -> list[_Route]:
        r = "/repos/{owner}/{repo}"
        return [
            _route("GET", "/app", self._get_app, auth="jwt"),
            _route(
                "POST", "/app-manifests/{code}/conversions", self._convert_manifest, auth="none"
            ),
            _route("GET", "/app/hook/config", self._get_hook_config, auth="jwt"),
            _route("PATCH", "/app/hook/config", self._update_hook_config, auth="jwt"),
            _route("GET", "/app/hook/deliveries", self._list_deliveries, auth="jwt"),
            _route(
                "POST",
                "/app/hook/deliveries/{delivery_id}/attempts",
                self._redeliver,
                auth="jwt",
            ),
            _route(
                "GET", "/app/installations/{installation_id}", self._get_installation, auth="jwt"
            ),
            _route(
                "POST",
                "/app/installations/{installation_id}/access_tokens",
                self._create_token,
                auth="jwt",
            ),
            _route("GET", "/installation/repositories", self._list_installation_repositories),
            _route("GET", "/user", self._get_user),
            _route("POST", r + "/check-runs", self._create_check_run),
            _route("GET", r + "/check-runs/{check_run_id}", self._get_check_run),
            _route("PATCH", r + "/check-runs/{check_run_id}", self._update_check_run),
            _route("GET", r + "/commits/{ref}/check-runs", self._list_check_runs),
            _route("GET", r + "/issues/{issue_number}/comments", self._list_comments),
            _route("POST", r + "/issues/{issue_number}/comments", self._create_comment),
            _route("GET", r + "/issues/comments/{comment_id}", self._get_comment),
            _route("PATCH", r + "/issues/comments/{comment_id}", self._update_comment),
            _route("DELETE", r + "/issues/comments/{comment_id}", self._delete_comment),
            _route("POST", r + "/statuses/{sha}", self._create_status),
            _route("GET", r + "/commits/{ref}/statuses", self._list_statuses),
            _route("GET", r + "/contents/{path}", self._get_contents),
            _route("GET", r + "/git/trees/{tree_sha}", self._get_tree),
            _route("GET", r + "/actions/runs/{run_id}/artifacts", self._list_artifacts),
            _route(
                "GET",
                r + "/actions/artifacts/{artifact_id}/{archive_format}",
                self._download_artifact,
            ),
            _route(
                "GET",
                r + "/collaborators/{username}/permission",
                self._get_permission,
            ),
            _route("POST", r + "/actions/runs/{run_id}/rerun", self._rerun_workflow),
            _route("GET", "/_blobs/{blob}", self._get_blob, auth="none"),
        ]

    # apps
    def _get_app(self, call: _Call) -> _Reply:
        return _Reply(
            200,
            {
                "id": self.app_id,
                "slug": self.app_slug,
                "name": self.app_slug,
                "owner": {"login": "aac-owner", "type": "Organization"},
                "html_url": f"https://github.com/apps/{self.app_slug}",
                "permissions": dict(self.app_permissions),
                "events": list(self.app_events),
            },
        )

    # the manifest flow (https://docs.github.com/apps/sharing-github-apps/registering-a-github-app-from-a-manifest)
    async def _register_app_form(self, request: Request, org: str | None) -> Response:
        """The web page a browser posts the manifest to; a person "confirms" at once, and
        GitHub sends the browser to ``redirect_url`` with a one-time code and the state."""
        form = await request.form()
        with self._lock:
            self.requests.append(
                RecordedRequest("POST", request.url.path, dict(request.query_params), None, 0.0)
            )
            try:
                manifest = json.loads(str(form.get("manifest") or ""))
            except ValueError:
                return Response("Invalid GitHub App configuration: not JSON", status_code=422)
            problems = [
                f"{key} is required"
                for key in ("url", "redirect_url")
                if not isinstance(manifest.get(key), str) or not manifest[key]
            ]
            if not (manifest.get("hook_attributes") or {}).get("url"):
                problems.append("hook_attributes.url is required")
            refused = sorted(ALWAYS_DELIVERED_EVENTS & set(manifest.get("default_events") or []))
            if refused:
                problems.append(f"Default events unsupported: {', '.join(refused)}")
            if problems:
                return Response(
                    "Invalid GitHub App configuration: " + "; ".join(problems), status_code=422
                )
            code = secrets.token_hex(10)
            self.manifest_codes[code] = (datetime.now(UTC), {**manifest, "org": org}, False)
        query = {"code": code, "state": request.query_params.get("state", "")}
        return Response(
            status_code=302, headers={"location": f"{manifest['redirect_url']}?{urlencode(query)}"}
        )

    def _convert_manifest(self, call: _Call) -> _Reply:
        """``apps/create-from-manifest``: GitHub forgets a code once used or an hour old."""
        code = call.params["code"]
        issued = self.manifest_codes.get(code)
        if issued is None or issued[2] or datetime.now(UTC) - issued[0] >= self.manifest_code_ttl:
            raise _error(404, "Not Found")
        when, manifest, _ = issued
        self.manifest_codes[code] = (when, manifest, True)
        self.app_permissions = dict(manifest.get("default_permissions") or {})
        self.app_events = list(manifest.get("default_events") or [])
        self.hook_config.update(
            url=str(manifest["hook_attributes"]["url"]), content_type="json", secret="whsec-new"
        )
        owner = manifest.get("org") or "octo-admin"
        created = {
            "id": self.app_id,
            "slug": self.app_slug,
            "node_id": "A_kwDOFAKE",
            "client_id": "Iv1.fa4e0000c11e47",
            "owner": {"login": owner, "type": "Organization" if manifest.get("org") else "User"},
            "name": manifest.get("name") or self.app_slug,
            "description": manifest.get("description") or "",
            "external_url": manifest["url"],
            "html_url": f"https://github.com/apps/{self.app_slug}",
            "created_at": _iso(when),
            "updated_at": _iso(when),
            "permissions": dict(self.app_permissions),
            "events": list(self.app_events),
            "client_secret": "c1ient-s3cret-" + secrets.token_hex(8),
            "webhook_secret": "whsec-new",
            "pem": self.manifest_pem,
        }
        self.created_apps.append(created)
        return _Reply(201, created)

    # the App's webhook
    def _hook_config_json(self) -> dict[str, Any]:
        # GitHub never shows the secret back, only that one is set.
        return {**self.hook_config, "secret": "********" if self.hook_config["secret"] else None}

    def _get_hook_config(self, call: _Call) -> _Reply:
        return _Reply(200, self._hook_config_json())

    def _update_hook_config(self, call: _Call) -> _Reply:
        body = call.body or {}
        if "url" in body and not str(body["url"]).startswith(("http://", "https://")):
            raise _error(422, "Validation Failed", errors=[{"code": "invalid", "field": "url"}])
        self.hook_config.update({k: str(v) for k, v in body.items() if k in self.hook_config})
        return _Reply(200, self._hook_config_json())

    def _list_deliveries(self, call: _Call) -> _Reply:
        """``apps/list-webhook-deliveries``: newest first, paged by an opaque cursor."""
        try:
            per_page = min(max(int(call.query.get("per_page", 30)), 1), 100)
        except ValueError:
            raise _error(422, "Invalid per_page") from None
        wanted = call.query.get("status")
        items = [
            d
            for d in self.deliveries
            if wanted is None or (wanted == "success") == (200 <= d["status_code"] < 300)
        ]
        start = 0
        cursor = call.query.get("cursor")
        if cursor is not None:
            ids = [d["id"] for d in items]
            if not cursor.startswith("v1_") or int(cursor[3:] or 0) not in ids:
                raise _error(400, "Bad Request: invalid cursor")
            start = ids.index(int(cursor[3:]))
        page = items[start : start + per_page]
        headers = {}
        if start + per_page < len(items):
            query = {"per_page": str(per_page), "cursor": f"v1_{items[start + per_page]['id']}"}
            if wanted is not None:
                query["status"] = wanted
            headers["link"] = f'<{call.base_url}{call.path}?{urlencode(query)}>; rel="next"'
        return _Reply(200, page, headers)

    def _redeliver(self, call: _Call) -> _Reply:
        """``apps/redeliver-webhook-delivery``: 202, and GitHub logs a new attempt."""
        delivery_id = int(call.params["delivery_id"])
        original = next((d for d in self.deliveries if d["id"] == delivery_id), None)
        if original is None:
            raise _error(404, "Not Found")
        self.add_delivery(
            original["guid"],
            status_code=self.redelivery_status,
            delivered_at=datetime.now(UTC),
            event=original["event"],
            redelivery=True,
        )
        return _Reply(202, {})

    def _installation_id(self, call: _Call) -> int:
        installation_id = int(call.params["installation_id"])
        if installation_id not in self.installations:
            raise _error(404, "Not Found")
        return installation_id

    def _get_installation(self, call: _Call) -> _Reply:
        installation_id = self._installation_id(call)
        suspended = self.suspended.get(installation_id)
        return _Reply(
            200,
            {
                "id": installation_id,
                "app_id": self.app_id,
                "app_slug": self.app_slug,
                "account": {"login": self.installations[installation_id], "type": "Organization"},
                "target_type": "Organization",
                "repository_selection": "all",
                "permissions": {"checks": "write", "issues": "write"},
                "suspended_at": None if suspended is None else _iso(suspended),
                "suspended_by": None
                if suspended is None
                else {"login": "octo-admin", "type": "User"},
            },
        )

    def _create_token(self, call: _Call) -> _Reply:
        installation_id = self._installation_id(call)
        if installation_id in self.suspended:
            raise _error(
                403,
                "This installation has been suspended",
                documentation_url=DOCS
                + "/apps/apps#create-an-installation-access-token-for-an-app",
            )
        token = self.token_factory()
        expires = datetime.now(UTC) + self.token_ttl
        self._tokens[token] = (installation_id, expires)
        self.minted_tokens.append(token)
        scope = call.body if isinstance(call.body, dict) else {}
        if scope:
            self.token_scopes[token] = scope
        return _Reply(
            201,
            {
                "token": token,
                "expires_at": _iso(expires),
                "permissions": scope.get("permissions")
                or {"checks": "write", "issues": "write", "statuses": "write"},
                "repository_selection": "selected" if "repositories" in scope else "all",
            },
        )

    def _list_installation_repositories(self, call: _Call) -> _Reply:
        """``apps/list-repos-accessible-to-installation``: installation tokens only."""
        installation_id = call.principal.installation_id
        if call.principal.kind != "installation" or installation_id is None:
            raise _error(403, "You must authenticate with an installation access token.")
        repos = []
        for full_name in self.installation_repositories.get(installation_id, []):
            owner, name = full_name.split("/", 1)
            repo_id = int(hashlib.sha256(full_name.encode()).hexdigest()[:8], 16)
            repos.append(
                {
                    "id": repo_id,
                    "node_id": f"R_{repo_id}",
                    "name": name,
                    "full_name": full_name,
                    "private": True,
                    "owner": {"login": owner, "type": "Organization"},
                    "html_url": f"https://github.com/{full_name}",
                    "url": f"{call.base_url}/repos/{full_name}",
                    "default_branch": "main",
                }
            )
        page, headers = self._paginate(call, repos)
        return _Reply(
            200,
            {"total_count": len(repos), "repository_selection": "selected", "repositories": page},
            headers,
        )

    def _get_user(self, call: _Call) -> _Reply:
        if call.principal.kind != "pat":
            raise _error(403, "Resource not accessible by integration")
        return _Reply(200, {"login": call.principal.login, "id": 1, "type": "User"})

    # check runs
    def _check_run_json(self, run: CheckRun, base_url: str) -> dict[str, Any]:
        url = f"{base_url}/repos/{run.repo}/check-runs/{run.id}"
        return {
            "id": run.id,
            "head_sha": run.head_sha,
            "name": run.name,
            "status": run.status,
            "conclusion": run.conclusion,
            "external_id": run.external_id or "",
            "details_url": run.details_url,
            "url": url,
            "html_url": f"https://github.com/{run.repo}/runs/{run.id}",
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "output": {
                "title": run.output.get("title"),
                "summary": run.output.get("summary"),
                "text": run.output.get("text"),
                "annotations_count": len(run.annotations),
                "annotations_url": url + "/annotations",
            },
            "app": {"id": self.app_id, "slug": self.app_slug},
            "check_suite": {"id": 1},
        }

    def _require_app(self, call: _Call) -> None:
        if call.principal.kind != "installation":
            raise _error(403, "You must authenticate via a GitHub App.")

    def _apply_check_run_fields(self, run: CheckRun, body: dict[str, Any]) -> None:
        for name in ("name", "details_url", "external_id", "started_at", "completed_at"):
            if name in body:
                setattr(run, name, body[name])
        if "status" in body:
            run.status = body["status"]
        if "conclusion" in body:
            run.conclusion = body["conclusion"]
            run.status = "completed"
            run.completed_at = body.get("completed_at") or _iso(datetime.now(UTC))
        if run.status == "completed" and run.conclusion is None:
            raise _error(422, "Invalid request.\n\nNo conclusion given for a completed run.")
        if "status" in body or "conclusion" in body:
            run.states.append(run.status)
        if "output" in body:
            output = body["output"]
            run.output.update(
                {k: v for k, v in output.items() if k in ("title", "summary", "text")}
            )
            run.annotations.extend(output.get("annotations", []))
        if "actions" in body:
            run.actions = body["actions"]

    def _create_check_run(self, call: _Call) -> _Reply:
        self._require_app(call)
        repo = self._repo(call)
        body = call.body
        run = CheckRun(
            id=self._new_id(),
            repo=repo,
            head_sha=body["head_sha"],
            name=body["name"],
            status="queued",
            conclusion=None,
            external_id=None,
            details_url=None,
            started_at=_iso(datetime.now(UTC)),
            completed_at=None,
            output={},
        )
        self._apply_check_run_fields(run, body)
        if not run.states:
            run.states.append(run.status)  # created "queued" by default
        self.check_runs[run.id] = run
        return _Reply(201, self._check_run_json(run, call.base_url))

    def _find_check_run(self, call: _Call) -> CheckRun:
        repo = self._repo(call)
        run = self.check_runs.get(int(call.params["check_run_id"]))
        if run is None or run.repo != repo:
            raise _error(404, "Not Found")
        return run

    def _get_check_run(self, call: _Call) -> _Reply:
        return _Reply(200, self._check_run_json(self._find_check_run(call), call.base_url))

    def _update_check_run(self, call: _Call) -> _Reply:
        self._require_app(call)
        run = self._find_check_run(call)
        self._apply_check_run_fields(run, call.body)
        return _Reply(200, self._check_run_json(run, call.base_url))

    def _list_check_runs(self, call: _Call) -> _Reply:
        repo = self._repo(call)
        name = call.query.get("check_name")
        runs = [
            run
            for run in sorted(self.check_runs.values(), key=lambda r: -r.id)  # newest first
            if run.repo == repo
            and run.head_sha == call.params["ref"]
            and (name is None or run.name == name)
        ]
        if call.query.get("filter", "latest") == "latest":
            latest: dict[str, CheckRun] = {}
            for run in runs:
                latest.setdefault(run.name, run)
            runs = list(latest.values())
        page, headers = self._paginate(call, runs)
        return _Reply(
            200,
            {
                "total_count": len(runs),
                "check_runs": [self._check_run_json(r, call.base_url) for r in page],
            },
            headers,
        )

    # comments
    def _comment_json(self, comment: Comment, base_url: str) -> dict[str, Any]:
        return {
            "id": comment.id,
            "node_id": f"IC_{comment.id}",
            "url": f"{base_url}/repos/{comment.repo}/issues/comments/{comment.id}",
            "html_url": f"https://github.com/{comment.repo}/pull/{comment.issue}"
            f"#issuecomment-{comment.id}",
            "issue_url": f"{base_url}/repos/{comment.repo}/issues/{comment.issue}",
            "body": comment.body,
            "user": {
                "login": comment.user,
                "type": "Bot" if comment.user.endswith("[bot]") else "User",
            },
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "author_association": "NONE",
        }

    def _comment_body(self, call: _Call) -> str:
        body = str(call.body["body"])
        if len(body) > COMMENT_MAX_CHARS:
            raise _error(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "IssueComment",
                        "code": "custom",
                        "field": "body",
                        "message": f"body is too long (maximum is {COMMENT_MAX_CHARS} characters)",
                    }
                ],
            )
        return body

    def _list_comments(self, call: _Call) -> _Reply:
        repo = self._repo(call)
        issue = int(call.params["issue_number"])
        comments = sorted(
            (c for c in self.comments.values() if c.repo == repo and c.issue == issue),
            key=lambda c: c.id,
        )
        page, headers = self._paginate(call, comments)
        return _Reply(200, [self._comment_json(c, call.base_url) for c in page], headers)

    def _create_comment(self, call: _Call) -> _Reply:
        repo = self._repo(call)
        body = self._comment_body(call)
        now = _iso(datetime.now(UTC))
        comment = Comment(
            self._new_id(),
            repo,
            int(call.params["issue_number"]),
            call.principal.login,
            body,
            now,
            now,
        )
        self.comments[comment.id] = comment
        return _Reply(201, self._comment_json(comment, call.base_url))

    def _find_comment(self, call: _Call) -> Comment:
        repo = self._repo(call)
        comment = self.comments.get(int(call.params["comment_id"]))
        if comment is None or comment.repo != repo:
            raise _error(404, "Not Found")
        return comment

    def _get_comment(self, call: _Call) -> _Reply:
        return _Reply(200, self._comment_json(self._find_comment(call), call.base_url))

    def _update_comment(self, call: _Call) -> _Reply:
        comment = self._find_comment(call)
        comment.body = self._comment_body(call)
        comment.updated_at = _iso(datetime.now(UTC))
        return _Reply(200, self._comment_json(comment, call.base_url))

    def _delete_comment(self, call: _Call) -> _Reply:
        comment = self._find_comment(call)
        del self.comments[comment.id]
        return _Reply(204)

    # statuses
    def _create_status(self, call: _Call) -> _Reply:
        repo = self._repo(call)
        description = call.body.get("description")
        if description is not None and len(description) > STATUS_DESCRIPTION_MAX_CHARS:
            raise _error(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "Status",
                        "code": "custom",
                        "field": "description",
                        "message": "description is too long (maximum is 140 characters)",
                    }
                ],
            )
        now = _iso(datetime.now(UTC))
        status = {
            "id": self._new_id(),
            "repo": repo,
            "sha": call.params["sha"],
            "state": call.body["state"],
            "description": description,
            "target_url": call.body.get("target_url"),
            "context": call.body.get("context", "default"),
            "created_at": now,
            "updated_at": now,
            "creator": {"login": call.principal.login},
        }
        self.statuses.append(status)
        return _Reply(201, {k: v for k, v in status.items() if k not in ("repo", "sha")})

    def _list_statuses(self, call: _Call) -> _Reply:
        repo = self._repo(call)
        found = [
            {k: v for k, v in s.items() if k not in ("repo", "sha")}
            for s in reversed(self.statuses)
            if s["repo"] == repo and s["sha"] == call.params["ref"]
        ]
        page, headers = self._paginate(call, found)
        return _Reply(200, page, headers)

    # contents, artifacts, permissions
    def _get_contents(self, call: _Call) -> _Reply:
        repo = self._repo(call)
        path = call.params["path"]
        data = self.contents.get((repo, path, call.query.get("ref", "main")))
        if data is None:
            raise _error(404, "Not Found")
        encoded = base64.b64encode(data).decode()
        wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
        return _Reply(
            200,
            {
                "type": "file",
                "encoding": "base64",
                "size": len(data),
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "content": wrapped,
                "sha": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),  # noqa: S324
            },
        )

    def _get_tree(self, call: _Call) -> _Reply:
        """GitHub's "Get a tree" for a commit: entries in git's order, depth first when
        ``recursive`` is given (any value), cut at ``tree_max_entries`` with truncated: true."""
        repo = self._repo(call)
        paths = self.trees.get((repo, call.params["tree_sha"]))
        if paths is None:
            raise _error(404, "Not Found", documentation_url=DOCS + "/git/trees#get-a-tree")
        root: dict[str, Any] = {}
        for path in paths:
            node = root
            *dirs, name = path.split("/")
            for part in dirs:
                node = node.setdefault(part, {})
            node[name] = None
        api = f"{call.base_url}/repos/{repo}/git"
        entries = []
        for path, child in _tree_walk(root, "", recursive="recursive" in call.query):
            digest = _git_sha("tree" if child is not None else "blob", path.encode())
            if child is None:
                entry = {"mode": "100644", "type": "blob", "size": len(path), "sha": digest}
                entry["url"] = f"{api}/blobs/{digest}"
            else:
                entry = {"mode": "040000", "type": "tree", "sha": digest}
                entry["url"] = f"{api}/trees/{digest}"
            entries.append({"path": path, **entry})
        truncated = len(entries) > self.tree_max_entries
        root_sha = _git_sha("tree", "\n".join(paths).encode())
        return _Reply(
            200,
            {
                "sha": root_sha,
                "url": f"{api}/trees/{root_sha}",
                "tree": entries[: self.tree_max_entries],
                "truncated": truncated,
            },
        )

    def _list_artifacts(self, call: _Call) -> _Reply:
        repo = self._repo(call)
        run_id = int(call.params["run_id"])
        items = [
            {
                "id": a["id"],
                "node_id": f"MDg6QXJ0aWZhY3Q{a['id']}",
                "name": a["name"],
                "size_in_bytes": len(a["data"]),
                "url": f"{call.base_url}/repos/{repo}/actions/artifacts/{a['id']}",
                "archive_download_url": f"{call.base_url}/repos/{repo}/actions/artifacts/"
                f"{a['id']}/zip",
                "expired": False,
                "workflow_run": {"id": run_id},
            }
            for a in self.artifacts.get((repo, run_id), [])
        ]
        page, headers = self._paginate(call, items)
        return _Reply(200, {"total_count": len(items), "artifacts": page}, headers)

    def _download_artifact(self, call: _Call) -> _Reply:
        repo = self._repo(call)
        if call.params["archive_format"] != "zip":
            raise _error(404, "Not Found")
        artifact_id = int(call.params["artifact_id"])
        for (artifact_repo, _), items in self.artifacts.items():
            for artifact in items:
                if artifact_repo == repo and artifact["id"] == artifact_id:
                    blob = secrets.token_hex(8)
                    self._blobs[blob] = artifact["data"]
                    # Like GitHub: a redirect to a short-lived, pre-signed blob URL.
                    origin = call.base_url.removesuffix(GHES_PREFIX)
                    return _Reply(302, None, {"location": f"{origin}/_blobs/{blob}"})
        raise _error(404, "Not Found")

    def _rerun_workflow(self, call: _Call) -> _Reply:
        self.reruns.append((self._repo(call), int(call.params["run_id"])))
        return _Reply(201, {})

    def _get_blob(self, call: _Call) -> _Reply:
        data = self._blobs.get(call.params["blob"])
        if data is None:
            raise _error(404, "Not Found")
        return _Reply(200, raw=data, media_type="application/zip")

    def _get_permission(self, call: _Call) -> _Reply:
        repo = self._repo(call)
        user = call.params["username"]
        role, permission = self.permissions.get((repo, user), ("none", "none"))
        # As GitHub: `permission` is the legacy admin/write/read/none, `role_name` the real role.
        return _Reply(200, {"permission": permission, "role_name": role, "user": {"login": user}})

    # pagination
    def _paginate(self, call: _Call, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """One page of ``items`` and GitHub's Link header (per_page 30 by default, <= 100)."""
        try:
            per_page = min(max(int(call.query.get("per_page", 30)), 1), 100)
            page = max(int(call.query.get("page", 1)), 1)
        except ValueError:
            raise _error(422, "Invalid pagination parameter") from None
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(number: int) -> str:
            query = dict(parse_qsl(urlencode(call.query)))
            query.update({"per_page": str(per_page), "page": str(number)})
            return f"<{call.base_url}{call.path}?{urlencode(query)}>"

        rels = []
        if page > 1:
            rels += [f'{link(page - 1)}; rel="prev"', f'{link(1)}; rel="first"']
        if page < last:
            rels += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
        return chunk, ({"link": ", ".join(rels)} if rels else {})


def _tree_walk(node: dict[str, Any], prefix: str, *, recursive: bool) -> Iterator[tuple[str, Any]]:
    """(path, subtree or None for a file) in git's order: names compared as bytes, a
    directory's name as if it ended in "/"."""
    for name in sorted(node, key=lambda n: (n + "/" if node[n] is not None else n).encode()):
        child = node[name]
        yield prefix + name, child
        if child is not None and recursive:
            yield from _tree_walk(child, f"{prefix}{name}/", recursive=True)


def _git_sha(kind: str, data: bytes) -> str:
    return hashlib.sha1(b"%s %d\0" % (kind.encode(), len(data)) + data).hexdigest()  # noqa: S324
