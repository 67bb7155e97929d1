"""A fake GitLab REST API (v4) on 127.0.0.1 for driving python-gitlab in tests.

Serves what the bot calls (``GET /user``, users by name, inherited project members, repository
files, commit statuses with GitLab's state machine, merge request notes, pipeline test reports,
pipeline jobs and their artifact archives, pipeline retries, project and group webhooks), keeps
its state in memory for tests to inspect, answers with GitLab's status codes, error bodies,
pagination and ``RateLimit-*`` headers, and injects faults on demand. Projects are addressed by
numeric id or URL-encoded path, routed on the raw (still encoded) request path as GitLab does.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.loopback import LoopbackServer

API = "/api/v4"
NOTE_MAX_CHARS = 1_000_000
DESCRIPTION_MAX_CHARS = 255
RATE_LIMIT = 2000  # GitLab.com's authenticated API limit per minute
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
# GitLab's access levels.
GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50

FaultKind = Literal["server_error", "rate_limit", "timeout"]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(slots=True)
class Fault:
    """Make the next ``times`` requests matching ``method`` and ``path`` (a regex over the
    decoded path below ``/api/v4``) fail."""

    kind: FaultKind  # "server_error" answers ``status`` (any error code, despite the name)
    method: str | None = None
    path: str = ".*"
    times: int = 1
    status: int = 502  # "server_error": which 5xx
    server_retry_after: int | None = None  # "server_error": a Retry-After header to send
    applied: bool = False  # "server_error": apply the request, then lose its response
    headers: dict[str, str] = field(default_factory=dict)  # "server_error": extra headers
    retry_after: int = 60  # "rate_limit": seconds until the window resets
    delay: float = 1.0  # "timeout": seconds before answering

    def fires(self, method: str, path: str) -> bool:
        if self.times <= 0 or self.method not in (None, method):
            return False
        if not re.fullmatch(self.path, path):
            return False
        self.times -= 1
        return True


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str  # decoded, below /api/v4
    query: dict[str, str]
    body: Any
    status: int = 0
    token: str = ""


@dataclass(slots=True)
class User:
    id: int
    username: str
    name: str
    state: str = "active"

    def json(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "name": self.name,
            "state": self.state,
            "locked": False,
            "avatar_url": None,
            "web_url": f"{base}/{self.username}",
        }


@dataclass(slots=True)
class Note:
    id: int
    project: str
    mr: int
    author: str
    body: str
    created_at: str
    updated_at: str
    system: bool = False


@dataclass(slots=True)
class Status:
    id: int
    project: str
    sha: str
    name: str
    status: str
    pipeline_id: int
    ref: str | None
    description: str | None
    target_url: str | None
    author: str
    created_at: str
    # Every state this status entered, in order.
    history: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Pipeline:
    id: int
    project: str
    sha: str
    ref: str
    source: str = "merge_request_event"
    test_report: dict[str, Any] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    status: str = "failed"

    def json(self, base: str, project_id: int) -> dict[str, Any]:
        """As ``GET /projects/:id/pipelines/:pipeline_id`` shows it (the fields the bot reads)."""
        return {
            "id": self.id,
            "iid": self.id,
            "project_id": project_id,
            "sha": self.sha,
            "ref": self.ref,
            "status": self.status,
            "source": self.source,
            "web_url": f"{base}/{self.project}/-/pipelines/{self.id}",
        }


@dataclass(slots=True)
class WebHook:
    """A project or group hook; ``token`` is write-only, as in GitLab."""

    id: int
    kind: str  # "project" | "group"
    owner: str  # the project's or group's path
    attributes: dict[str, Any]
    token: str = ""


# The attributes a hook has and their defaults on create (GitLab turns push events on).
HOOK_DEFAULTS: dict[str, Any] = {
    "push_events": True,
    "push_events_branch_filter": None,
    "tag_push_events": False,
    "issues_events": False,
    "confidential_issues_events": False,
    "merge_requests_events": False,
    "note_events": False,
    "confidential_note_events": False,
    "job_events": False,
    "pipeline_events": False,
    "wiki_page_events": False,
    "deployment_events": False,
    "releases_events": False,
    "enable_ssl_verification": True,
}


@dataclass(slots=True)
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    media_type: str = "application/json"


class _Rejected(Exception):
    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _error(status: int, message: Any) -> _Rejected:
    return _Rejected(_Reply(status, {"message": message}))


@dataclass(slots=True)
class _Call:
    method: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    user: User
    base: str  # scheme://host:port
    raw_path: str  # below /api/v4, still percent-encoded (what pagination links repeat)


Handler = Callable[[_Call], _Reply]

# GitLab's commit status state machine (HasStatus), as the statuses API drives it: each
# requested state fires these events in turn, and the first one that cannot fire fails.
_EVENTS = {
    "pending": ("enqueue",),
    "running": ("enqueue?", "run"),
    "success": ("success",),
    "failed": ("drop",),
    "canceled": ("cancel",),
}
_TRANSITIONS = {
    "enqueue": ({"created"}, "pending"),
    "run": ({"pending"}, "running"),
    "success": ({"created", "pending", "running"}, "success"),
    "drop": ({"created", "pending", "running"}, "failed"),
    "cancel": ({"created", "pending", "running"}, "canceled"),
}


class FakeGitlab:
    """GitLab's REST API in memory, served on 127.0.0.1 from a background thread."""

    def __init__(self, *, tokens: Mapping[str, str] | None = None) -> None:
        self._initial_tokens = dict(tokens or {})
        self._lock = threading.RLock()
        self._routes = self._build_routes()
        self._loopback: LoopbackServer | None = None
        self.port = 0
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The instance URL (python-gitlab adds ``/api/v4``)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeGitlab:
        app = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT", "DELETE"])]
        )
        self._loopback = LoopbackServer(app, name="fake GitLab")
        self.port = self._loopback.start()
        return self

    def stop(self) -> None:
        if self._loopback is not None:
            self._loopback.stop()
        self._loopback = None

    def reset(self) -> None:
        """Forget all state (between tests); the configured tokens stay."""
        with self._lock:
            # Requests still in flight from before the reset (a client that timed out on a
            # slow answer) must not land in the next test's state.
            self._generation = getattr(self, "_generation", 0) + 1
            self._next_id = 100
            self.requests: list[RecordedRequest] = []
            self.faults: list[Fault] = []
            self.users: dict[str, User] = {}
            self.tokens: dict[str, str] = {}  # token -> username
            self.token_scopes: dict[str, tuple[str, ...]] = {}
            for token, username in self._initial_tokens.items():
                self.add_token(token, username)
            self.projects: dict[str, int] = {}  # path -> id
            self.members: dict[tuple[str, str], int] = {}  # (namespace, username) -> level
            self.merge_requests: set[tuple[str, int]] = set()
            self.files: dict[tuple[str, str, str], bytes] = {}
            self.notes: dict[int, Note] = {}
            self.statuses: list[Status] = []
            self.pipelines: dict[int, Pipeline] = {}
            self.pipeline_retries: list[int] = []  # ids of the pipelines retried, in order
            self.artifacts: dict[int, bytes] = {}  # job id -> archive zip
            self.groups: dict[str, int] = {}  # path -> id
            self.group_hooks_licensed = True  # False: a Free instance (no group webhooks)
            self.hooks: dict[int, WebHook] = {}
            self.max_per_page = MAX_PER_PAGE
            self.rate_limit = RATE_LIMIT
            self._used: dict[str, int] = {}
            self.window_reset = int(time.time()) + 60

    # -- test helpers ---------------------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_token(self, token: str, username: str, *, scopes: tuple[str, ...] = ("api",)) -> User:
        """A personal access token acting as ``username`` (created if new); without the
        ``api`` scope (``read_api``) every write is refused as GitLab refuses it."""
        with self._lock:
            user = self.add_user(username)
            self.tokens[token] = username
            self.token_scopes[token] = scopes
            return user

    def add_user(self, username: str) -> User:
        with self._lock:
            if username not in self.users:
                self.users[username] = User(self._new_id(), username, username.title())
            return self.users[username]

    def add_project(self, path: str, *, members: Mapping[str, int] | None = None) -> int:
        """A project ``group/sub/name``; ``members`` are direct members and access levels."""
        with self._lock:
            project_id = self.projects.setdefault(path, self._new_id())
            for username, level in (members or {}).items():
                self.add_member(path, username, level)
            return project_id

    def add_group(self, path: str, *, members: Mapping[str, int] | None = None) -> int:
        """A group ``top/sub``; ``members`` are its members and access levels."""
        with self._lock:
            group_id = self.groups.setdefault(path, self._new_id())
            for username, level in (members or {}).items():
                self.add_member(path, username, level)
            return group_id

    def add_hook(self, kind: str, owner: str, url: str, **attributes: Any) -> int:
        """A hook someone made earlier (``kind`` "project" or "group")."""
        with self._lock:
            hook = WebHook(self._new_id(), kind, owner, {**HOOK_DEFAULTS, "url": url, **attributes})
            self.hooks[hook.id] = hook
            return hook.id

    def hooks_of(self, kind: str, owner: str) -> list[WebHook]:
        with self._lock:
            return [h for h in self.hooks.values() if (h.kind, h.owner) == (kind, owner)]

    def add_member(self, namespace: str, username: str, level: int) -> None:
        """Membership of a project or of a group (inherited by everything below it)."""
        with self._lock:
            self.add_user(username)
            self.members[(namespace, username)] = level

    def add_merge_request(self, project: str, iid: int) -> None:
        with self._lock:
            self.merge_requests.add((project, iid))

    def add_file(self, project: str, path: str, data: bytes, ref: str = "main") -> None:
        with self._lock:
            self.files[(project, path, ref)] = data

    def add_note(
        self, project: str, mr: int, author: str, body: str, *, system: bool = False
    ) -> int:
        with self._lock:
            self.add_user(author)
            now = _iso(datetime.now(UTC))
            note = Note(self._new_id(), project, mr, author, body, now, now, system)
            self.notes[note.id] = note
            return note.id

    def add_pipeline(
        self,
        project: str,
        sha: str,
        *,
        ref: str = "refs/merge-requests/1/head",
        test_report: dict[str, Any] | None = None,
    ) -> int:
        with self._lock:
            pipeline = Pipeline(self._new_id(), project, sha, ref, test_report=test_report or {})
            self.pipelines[pipeline.id] = pipeline
            return pipeline.id

    def add_job(
        self, pipeline_id: int, name: str, *, archive: bytes | None = None, junit: bool = True
    ) -> int:
        """A finished job; ``archive`` is its ``artifacts:paths`` zip, ``junit`` whether it also
        uploaded ``artifacts:reports:junit`` (listed, but not downloadable through the API)."""
        with self._lock:
            job_id = self._new_id()
            artifacts = []
            if archive is not None:
                self.artifacts[job_id] = archive
                artifacts.append(
                    {
                        "file_type": "archive",
                        "size": len(archive),
                        "filename": "artifacts.zip",
                        "file_format": "zip",
                    }
                )
            if junit:
                artifacts.append(
                    {
                        "file_type": "junit",
                        "size": 750,
                        "filename": "junit.xml.gz",
                        "file_format": "gzip",
                    }
                )
            self.pipelines[pipeline_id].jobs.append(
                {
                    "id": job_id,
                    "name": name,
                    "stage": "test",
                    "status": "success",
                    "artifacts": artifacts,
                }
            )
            return job_id

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def mr_notes(self, project: str, mr: int) -> list[Note]:
        with self._lock:
            return [n for n in self.notes.values() if n.project == project and n.mr == mr]

    def commit_statuses(self, project: str, sha: str, name: str | None = None) -> list[Status]:
        with self._lock:
            return [
                s
                for s in self.statuses
                if s.project == project and s.sha == sha and name in (None, s.name)
            ]

    def external_pipelines(self) -> list[Pipeline]:
        """Pipelines GitLab opened for statuses posted without a pipeline to join."""
        with self._lock:
            return [p for p in self.pipelines.values() if p.source == "external"]

    def writes(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method != "GET"]

    # -- HTTP -----------------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> Response:
        raw_body = await request.body()
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
        base = f"{request.url.scheme}://{request.url.netloc}"
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        generation = self._generation
        slow = self._take_timeout(request.method, raw_path)
        if slow is not None:
            await asyncio.sleep(slow.delay)  # the client's timeout fires meanwhile
        if generation != self._generation:
            return Response(status_code=503)  # its test is over; the fake was reset since
        reply = self._handle(request.method, raw_path, query, request.headers, raw_body, base)
        if reply.raw is not None:
            return Response(reply.raw, reply.status, reply.headers, media_type=reply.media_type)
        if reply.body is None:
            return Response(status_code=reply.status, headers=reply.headers)
        return Response(
            json.dumps(reply.body).encode(),
            reply.status,
            reply.headers,
            media_type=reply.media_type,
        )

    def _take_timeout(self, method: str, raw_path: str) -> Fault | None:
        path = unquote(raw_path.removeprefix(API))
        with self._lock:
            for fault in self.faults:
                if fault.kind == "timeout" and fault.fires(method, path):
                    return fault
        return None

    def _handle(
        self,
        method: str,
        raw_path: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        raw_body: bytes,
        base: str,
    ) -> _Reply:
        with self._lock:
            sub = raw_path.removeprefix(API)
            token = headers.get("private-token", "")
            record = RecordedRequest(method, unquote(sub), query, None, token=token)
            self.requests.append(record)
            try:
                body = self._parse_body(raw_body, headers)
                record.body = body
                if not raw_path.startswith(API + "/"):
                    raise _error(404, "404 Not Found")
                user = self._authenticate(token)
                if method != "GET" and "api" not in self.token_scopes.get(token, ("api",)):
                    raise _Rejected(
                        _Reply(
                            403,
                            {
                                "error": "insufficient_scope",
                                "error_description": "The request requires higher privileges "
                                "than provided by the access token.",
                                "scope": "api",
                            },
                        )
                    )
                limited = self._count(token)
                if limited is not None:
                    raise _Rejected(limited)
                lost = self._apply_faults(method, record.path)
                handler, params = self._match(method, sub)
                reply = handler(_Call(method, params, query, body, user, base, sub))
                if lost is not None:
                    reply = lost
            except _Rejected as rejected:
                reply = rejected.reply
            reply.headers = {**self._rate_headers(token), **reply.headers}
            record.status = reply.status
            return reply

    @staticmethod
    def _parse_body(raw: bytes, headers: Mapping[str, str]) -> Any:
        if not raw:
            return None
        if "json" in headers.get("content-type", ""):
            try:
                return json.loads(raw)
            except ValueError:
                raise _error(400, "400 Bad request - JSON parse error") from None
        return dict(parse_qsl(raw.decode()))

    def _authenticate(self, token: str) -> User:
        username = self.tokens.get(token)
        if username is None:
            raise _error(401, "401 Unauthorized")
        return self.users[username]

    def _count(self, token: str) -> _Reply | None:
        if time.time() >= self.window_reset:
            self._used.clear()
            self.window_reset = int(time.time()) + 60
        used = self._used.get(token, 0) + 1
        self._used[token] = used
        if used > self.rate_limit:
            return self._throttled(max(1, self.window_reset - int(time.time())))
        return None

    def _throttled(self, retry_after: int) -> _Reply:
        """Rack::Attack's answer: plain text, with the window's headers and Retry-After."""
        reset = int(time.time()) + retry_after
        self.window_reset = reset
        headers = {
            "Retry-After": str(retry_after),
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Observed": str(self.rate_limit + 1),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": email.utils.formatdate(reset, usegmt=True),
        }
        return _Reply(429, None, headers, raw=b"Retry later\n", media_type="text/plain")

    def _rate_headers(self, token: str) -> dict[str, str]:
        used = self._used.get(token, 0)
        return {
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Observed": str(used),
            "RateLimit-Remaining": str(max(self.rate_limit - used, 0)),
            "RateLimit-Reset": str(self.window_reset),
            "RateLimit-ResetTime": email.utils.formatdate(self.window_reset, usegmt=True),
        }

    def _apply_faults(self, method: str, path: str) -> _Reply | None:
        """Raise the first fault that fires; an ``applied`` one is returned to answer later."""
        for fault in self.faults:
            if fault.kind == "timeout" or not fault.fires(method, path):
                continue
            if fault.kind == "rate_limit":
                raise _Rejected(self._throttled(fault.retry_after))
            headers = dict(fault.headers)
            if fault.server_retry_after is not None:
                headers["Retry-After"] = str(fault.server_retry_after)
            reply = _Reply(fault.status, {"message": f"{fault.status} Bad Gateway"}, headers)
            if fault.applied:
                return reply
            raise _Rejected(reply)
        return None

    def _match(self, method: str, sub: str) -> tuple[Handler, dict[str, str]]:
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(sub)
            if match is not None and route_method == method:
                return handler, {k: unquote(v) for k, v in match.groupdict().items()}
        raise _error(404, "404 Not Found")

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        p = r"/projects/(?P<project>[^/]+)"
        mr = p + r"/merge_requests/(?P<iid>\d+)"
        pipe = p + r"/pipelines/(?P<pipeline>\d+)"
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/user", self._get_user),
            ("GET", r"/users", self._list_users),
            ("GET", p + r"/members/all/(?P<user_id>\d+)", self._get_member),
            ("GET", p + r"/repository/files/(?P<file>[^/]+)", self._get_file),
            ("POST", p + r"/statuses/(?P<sha>[0-9a-f]+)", self._create_status),
            ("GET", p + r"/repository/commits/(?P<sha>[0-9a-f]+)/statuses", self._list_statuses),
            ("GET", mr + r"/notes", self._list_notes),
            ("POST", mr + r"/notes", self._create_note),
            ("GET", mr + r"/notes/(?P<note>\d+)", self._get_note),
            ("PUT", mr + r"/notes/(?P<note>\d+)", self._update_note),
            ("DELETE", mr + r"/notes/(?P<note>\d+)", self._delete_note),
            ("GET", pipe, self._get_pipeline),
            ("GET", pipe + r"/test_report", self._test_report),
            ("GET", pipe + r"/test_report_summary", self._test_report_summary),
            ("GET", pipe + r"/jobs", self._list_jobs),
            ("POST", pipe + r"/retry", self._retry_pipeline),
            ("GET", p + r"/jobs/(?P<job>\d+)/artifacts", self._download_artifacts),
        ]
        for owner in (p, r"/groups/(?P<group>[^/]+)"):
            one = owner + r"/hooks/(?P<hook>\d+)"
            table += [
                ("GET", owner + r"/hooks", self._list_hooks),
                ("POST", owner + r"/hooks", self._create_hook),
                ("GET", one, self._get_hook),
                ("PUT", one, self._update_hook),
                ("DELETE", one, self._delete_hook),
            ]
        return [(m, re.compile(pattern), handler) for m, pattern, handler in table]

    # -- resolution -----------------------------------------------------------------------
    def _project(self, call: _Call) -> str:
        """The project's path, if the caller may see it (GitLab hides the rest behind 404)."""
        ref = call.params["project"]
        path = ref
        if ref.isdigit():
            path = next((p for p, i in self.projects.items() if str(i) == ref), "")
        if path not in self.projects or self._access(path, call.user.username) < GUEST:
            raise _error(404, "404 Project Not Found")
        return path

    def _access(self, project: str, username: str) -> int:
        """The effective access level: the highest of the project's and its groups'."""
        parts = project.split("/")
        namespaces = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return max((self.members.get((ns, username), 0) for ns in namespaces), default=0)

    def _merge_request(self, call: _Call) -> tuple[str, int]:
        project = self._project(call)
        iid = int(call.params["iid"])
        if (project, iid) not in self.merge_requests:
            raise _error(404, "404 Not found")
        return project, iid

    def _require(self, call: _Call, project: str, level: int) -> None:
        if self._access(project, call.user.username) < level:
            raise _error(403, "403 Forbidden")

    def _paginate(self, call: _Call, items: list[Any]) -> _Reply:
        try:
            per_page = min(int(call.query.get("per_page", DEFAULT_PER_PAGE)), self.max_per_page)
            page = max(int(call.query.get("page", 1)), 1)
        except ValueError:
            raise _error(400, {"error": "page is invalid"}) from None
        total = len(items)
        pages = max((total + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(number: int) -> str:
            query = {**call.query, "page": str(number), "per_page": str(per_page)}
            return f"<{call.base}{API}{call.raw_path}?{urlencode(query)}>"

        links = []
        if page > 1:
            links.append(f'{link(page - 1)}; rel="prev"')
        if page < pages:
            links.append(f'{link(page + 1)}; rel="next"')
        links += [f'{link(1)}; rel="first"', f'{link(pages)}; rel="last"']
        headers = {
            "x-page": str(page),
            "x-per-page": str(per_page),
            "x-next-page": str(page + 1) if page < pages else "",
            "x-prev-page": str(page - 1) if page > 1 else "",
            "x-total": str(total),
            "x-total-pages": str(pages),
            "Link": ", ".join(links),
        }
        return _Reply(200, chunk, headers)

    # -- handlers ---------------------------------------------------------------------------
    def _get_user(self, call: _Call) -> _Reply:
        return _Reply(200, call.user.json(call.base))

    def _list_users(self, call: _Call) -> _Reply:
        username = call.query.get("username")
        users = [u for u in self.users.values() if username in (None, u.username)]
        return self._paginate(call, [u.json(call.base) for u in users])

    def _get_member(self, call: _Call) -> _Reply:
        project = self._project(call)
        user = next((u for u in self.users.values() if str(u.id) == call.params["user_id"]), None)
        level = self._access(project, user.username) if user is not None else 0
        if user is None or level == 0:
            raise _error(404, "404 Not found")
        return _Reply(200, {**user.json(call.base), "access_level": level, "expires_at": None})

    def _get_file(self, call: _Call) -> _Reply:
        project = self._project(call)
        ref = call.query.get("ref")
        if not ref:
            raise _Rejected(_Reply(400, {"error": "ref is missing"}))
        path = call.params["file"]
        data = self.files.get((project, path, ref))
        if data is None:
            raise _error(404, "404 File Not Found")
        sha = hashlib.sha1(data, usedforsecurity=False).hexdigest()
        return _Reply(
            200,
            {
                "file_name": path.rsplit("/", 1)[-1],
                "file_path": path,
                "size": len(data),
                "encoding": "base64",
                "content": base64.b64encode(data).decode(),
                "content_sha256": hashlib.sha256(data).hexdigest(),
                "ref": ref,
                "blob_id": sha,
                "commit_id": sha,
                "last_commit_id": sha,
                "execute_filemode": False,
            },
        )

    def _status_json(self, status: Status, base: str) -> dict[str, Any]:
        return {
            "id": status.id,
            "sha": status.sha,
            "ref": status.ref,
            "status": status.status,
            "name": status.name,
            "target_url": status.target_url,
            "description": status.description,
            "created_at": status.created_at,
            "started_at": None,
            "finished_at": None,
            "allow_failure": False,
            "coverage": None,
            "pipeline_id": status.pipeline_id,
            "author": self.users[status.author].json(base),
        }

    def _create_status(self, call: _Call) -> _Reply:
        """``POST /projects/:id/statuses/:sha``, as lib/api/commit_statuses.rb runs it."""
        project = self._project(call)
        self._require(call, project, DEVELOPER)
        body = call.body or {}
        state = str(body.get("state") or "")
        if state not in _EVENTS:
            raise _Rejected(_Reply(400, {"error": "state does not have a valid value"}))
        name = str(body.get("name") or body.get("context") or "default")
        description = body.get("description")
        if description is not None and len(str(description)) > DESCRIPTION_MAX_CHARS:
            raise _error(400, {"description": ["is too long (maximum is 255 characters)"]})
        sha = call.params["sha"]
        pipeline = self._status_pipeline(project, sha, body)
        status = next(
            (
                s
                for s in self.statuses
                if (s.project, s.sha, s.name, s.pipeline_id) == (project, sha, name, pipeline.id)
                and s.status in ("pending", "running")
            ),
            None,
        )
        if status is None:
            status = Status(
                self._new_id(),
                project,
                sha,
                name,
                "created",
                pipeline.id,
                body.get("ref"),
                None,
                None,
                call.user.username,
                _iso(datetime.now(UTC)),
            )
            self.statuses.append(status)
        for event in _EVENTS[state]:
            optional = event.endswith("?")
            event = event.rstrip("?")
            allowed, target = _TRANSITIONS[event]
            if status.status not in allowed:
                if optional:
                    continue
                if status.status == "created":
                    self.statuses.remove(status)
                raise _error(
                    400,
                    f"Cannot transition status via :{event} from :{status.status} "
                    f'(Reason(s): Status cannot transition via "{event}")',
                )
            status.status = target
            status.history.append(target)
        status.description = description if description is not None else status.description
        status.target_url = body.get("target_url", status.target_url)
        return _Reply(201, self._status_json(status, call.base))

    def _status_pipeline(self, project: str, sha: str, body: Mapping[str, Any]) -> Pipeline:
        """The pipeline a status joins: the one named, else the newest for (sha, ref), else
        a new external pipeline (which GitLab would show on the MR)."""
        if body.get("pipeline_id") is not None:
            pipeline = self.pipelines.get(int(body["pipeline_id"]))
            if pipeline is None or pipeline.project != project or pipeline.sha != sha:
                raise _error(404, "404 Pipeline Not Found")
            return pipeline
        ref = body.get("ref")
        for pipeline in sorted(self.pipelines.values(), key=lambda p: -p.id):
            if pipeline.project == project and pipeline.sha == sha and ref in (None, pipeline.ref):
                return pipeline
        pipeline = Pipeline(self._new_id(), project, sha, ref or "main", source="external")
        self.pipelines[pipeline.id] = pipeline
        return pipeline

    def _list_statuses(self, call: _Call) -> _Reply:
        project = self._project(call)
        items = [
            self._status_json(s, call.base)
            for s in self.commit_statuses(project, call.params["sha"])
        ]
        return self._paginate(call, items)

    def _note_json(self, note: Note, base: str) -> dict[str, Any]:
        return {
            "id": note.id,
            "type": None,
            "body": note.body,
            "attachment": None,
            "author": self.users[note.author].json(base),
            "created_at": note.created_at,
            "updated_at": note.updated_at,
            "system": note.system,
            "noteable_id": note.mr,
            "noteable_type": "MergeRequest",
            "noteable_iid": note.mr,
            "resolvable": False,
            "confidential": False,
            "internal": False,
        }

    def _note_text(self, call: _Call) -> str:
        body = (call.body or {}).get("body")
        if not isinstance(body, str) or not body:
            raise _Rejected(_Reply(400, {"error": "body is missing"}))
        if len(body) > NOTE_MAX_CHARS:
            raise _error(400, {"note": ["is too long (maximum is 1000000 characters)"]})
        return body

    def _list_notes(self, call: _Call) -> _Reply:
        project, iid = self._merge_request(call)
        notes = sorted(self.mr_notes(project, iid), key=lambda n: (n.created_at, n.id))
        if call.query.get("sort", "desc") == "desc":
            notes.reverse()
        return self._paginate(call, [self._note_json(n, call.base) for n in notes])

    def _create_note(self, call: _Call) -> _Reply:
        project, iid = self._merge_request(call)
        text = self._note_text(call)
        note_id = self.add_note(project, iid, call.user.username, text)
        return _Reply(201, self._note_json(self.notes[note_id], call.base))

    def _find_note(self, call: _Call) -> Note:
        project, iid = self._merge_request(call)
        note = self.notes.get(int(call.params["note"]))
        if note is None or (note.project, note.mr) != (project, iid):
            raise _error(404, "404 Note Not Found")
        return note

    def _get_note(self, call: _Call) -> _Reply:
        return _Reply(200, self._note_json(self._find_note(call), call.base))

    def _update_note(self, call: _Call) -> _Reply:
        note = self._find_note(call)
        if note.author != call.user.username:
            raise _error(403, "403 Forbidden")
        note.body = self._note_text(call)
        note.updated_at = _iso(datetime.now(UTC))
        return _Reply(200, self._note_json(note, call.base))

    def _delete_note(self, call: _Call) -> _Reply:
        note = self._find_note(call)
        del self.notes[note.id]
        return _Reply(204)

    def _pipeline(self, call: _Call) -> Pipeline:
        project = self._project(call)
        pipeline = self.pipelines.get(int(call.params["pipeline"]))
        if pipeline is None or pipeline.project != project:
            raise _error(404, "404 Not found")
        return pipeline

    def _get_pipeline(self, call: _Call) -> _Reply:
        pipeline = self._pipeline(call)
        return _Reply(200, pipeline.json(call.base, self.projects[pipeline.project]))

    def _test_report(self, call: _Call) -> _Reply:
        report = self._pipeline(call).test_report
        empty = {
            "total_time": 0,
            "total_count": 0,
            "success_count": 0,
            "failed_count": 0,
            "skipped_count": 0,
            "error_count": 0,
            "test_suites": [],
        }
        return _Reply(200, report or empty)

    def _test_report_summary(self, call: _Call) -> _Reply:
        pipeline = self._pipeline(call)
        report = pipeline.test_report
        suites = []
        for suite in report.get("test_suites", []):
            cases = suite.get("test_cases", [])
            suites.append(
                {
                    "name": suite.get("name"),
                    "total_time": suite.get("total_time", 0),
                    "total_count": len(cases),
                    "success_count": sum(c.get("status") == "success" for c in cases),
                    "failed_count": sum(c.get("status") == "failed" for c in cases),
                    "skipped_count": sum(c.get("status") == "skipped" for c in cases),
                    "error_count": sum(c.get("status") == "error" for c in cases),
                    "build_ids": [j["id"] for j in pipeline.jobs],
                    "suite_error": suite.get("suite_error"),
                }
            )
        total = {
            "time": sum(s["total_time"] for s in suites),
            "count": sum(s["total_count"] for s in suites),
            "success": sum(s["success_count"] for s in suites),
            "failed": sum(s["failed_count"] for s in suites),
            "skipped": sum(s["skipped_count"] for s in suites),
            "error": sum(s["error_count"] for s in suites),
            "suite_error": next((s["suite_error"] for s in suites if s["suite_error"]), None),
        }
        return _Reply(200, {"total": total, "test_suites": suites})

    def _list_jobs(self, call: _Call) -> _Reply:
        pipeline = self._pipeline(call)
        return self._paginate(call, list(pipeline.jobs))

    def _retry_pipeline(self, call: _Call) -> _Reply:
        """Retry the failed and canceled jobs: Developer or above (``update_pipeline``), else
        GitLab's bare 403; the pipeline keeps its id and runs again."""
        pipeline = self._pipeline(call)
        self._require(call, pipeline.project, DEVELOPER)
        self.pipeline_retries.append(pipeline.id)
        if pipeline.status in ("failed", "canceled"):  # else GitLab has no job to retry
            pipeline.status = "running"
        return _Reply(201, pipeline.json(call.base, self.projects[pipeline.project]))

    def _download_artifacts(self, call: _Call) -> _Reply:
        self._project(call)
        archive = self.artifacts.get(int(call.params["job"]))
        if archive is None:
            raise _error(404, "404 Not Found")
        return _Reply(200, raw=archive, media_type="application/octet-stream")

    # -- webhooks: project hooks need Maintainer, group hooks Owner and a licence -----------
    def _hook_owner(self, call: _Call) -> tuple[str, str]:
        """(kind, path) of the project or group whose hooks are asked for, once allowed."""
        if "project" in call.params:
            project = self._project(call)
            self._require(call, project, MAINTAINER)
            return "project", project
        ref = call.params["group"]
        path = ref
        if ref.isdigit():
            path = next((g for g, i in self.groups.items() if str(i) == ref), "")
        if path not in self.groups or self._access(path, call.user.username) < GUEST:
            raise _error(404, "404 Group Not Found")
        # Without the group_webhooks licence GitLab's policy denies even an Owner.
        if not self.group_hooks_licensed or self._access(path, call.user.username) < OWNER:
            raise _error(403, "403 Forbidden")
        return "group", path

    def _hook_json(self, hook: WebHook) -> dict[str, Any]:
        owner_key = "project_id" if hook.kind == "project" else "group_id"
        owners = self.projects if hook.kind == "project" else self.groups
        return {
            "id": hook.id,
            owner_key: owners[hook.owner],
            "name": None,
            "description": None,
            "created_at": "2024-01-01T00:00:00.000Z",
            "alert_status": "executable",
            "disabled_until": None,
            "url_variables": [],
            "custom_webhook_template": None,
            **hook.attributes,
        }

    def _hook_fields(self, call: _Call) -> dict[str, Any]:
        body = dict(call.body or {})
        unknown = set(body) - set(HOOK_DEFAULTS) - {"url", "token", "id"}
        if unknown:
            raise _Rejected(
                _Reply(400, {"error": f"{sorted(unknown)[0]} does not have a valid value"})
            )
        for key, value in body.items():
            if (
                key in HOOK_DEFAULTS
                and key != "push_events_branch_filter"
                and not isinstance(value, bool)
            ):
                raise _Rejected(_Reply(400, {"error": f"{key} is invalid"}))
        url = body.get("url")
        if url is not None and not re.match(r"^https?://[^/\s]+", str(url)):
            raise _error(422, {"url": ["is blocked: Only allowed schemes are http, https"]})
        return body

    def _find_hook(self, call: _Call) -> WebHook:
        kind, owner = self._hook_owner(call)
        hook = self.hooks.get(int(call.params["hook"]))
        if hook is None or (hook.kind, hook.owner) != (kind, owner):
            raise _error(404, "404 Not found")
        return hook

    def _list_hooks(self, call: _Call) -> _Reply:
        kind, owner = self._hook_owner(call)
        hooks = sorted(self.hooks_of(kind, owner), key=lambda h: h.id)
        return self._paginate(call, [self._hook_json(h) for h in hooks])

    def _create_hook(self, call: _Call) -> _Reply:
        kind, owner = self._hook_owner(call)
        body = self._hook_fields(call)
        if not body.get("url"):
            raise _Rejected(_Reply(400, {"error": "url is missing"}))
        token = str(body.pop("token", "") or "")
        body.pop("id", None)
        hook = WebHook(self._new_id(), kind, owner, {**HOOK_DEFAULTS, **body}, token)
        self.hooks[hook.id] = hook
        return _Reply(201, self._hook_json(hook))

    def _get_hook(self, call: _Call) -> _Reply:
        return _Reply(200, self._hook_json(self._find_hook(call)))

    def _update_hook(self, call: _Call) -> _Reply:
        hook = self._find_hook(call)
        body = self._hook_fields(call)
        body.pop("id", None)
        if "token" in body:
            hook.token = str(body.pop("token") or "")
        hook.attributes.update(body)
        return _Reply(200, self._hook_json(hook))

    def _delete_hook(self, call: _Call) -> _Reply:
        hook = self._find_hook(call)
        del self.hooks[hook.id]
        return _Reply(204)
