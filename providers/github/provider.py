"""GitHub adapter: check runs (App) or commit statuses (token), and one sticky PR comment.

A thin layer over gidgethub. Every call goes through ``GithubProvider._call``, which
translates errors (``providers.github.errors``), retries transient ones a bounded number
of times and re-mints a refused installation token once. Rate limits are raised, not slept
on. Writes are serialised and paced per installation (or token); GETs revalidate with ETags.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http
import logging
import time
from collections import OrderedDict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterator,
    Mapping,
    MutableMapping,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import gidgethub
import httpx
import jwt
from gidgethub.abc import GitHubAPI

from providers.base import (
    GITHUB_LIMITS,
    Annotation,
    ArtifactFilter,
    AuthFailed,
    Capabilities,
    CommentBody,
    CommitStatus,
    Conclusion,
    PipelineResults,
    PlatformLimits,
    ProviderError,
    PublishResult,
    StatusState,
    TooLarge,
    Transient,
    clip,
    comment_within_limit,
)
from providers.context import CiContext
from providers.github.auth import (
    DEFAULT_REFRESH_MARGIN,
    AppCredentials,
    InstallationTokenCache,
    mint_installation_token,
    utc_now,
)
from providers.github.errors import is_status, translate_error

DEFAULT_API_URL = "https://api.github.com"
# GitHub: "wait at least one second between each" POST, PATCH, PUT or DELETE.
DEFAULT_PACING_SECONDS = 1.0
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
PER_PAGE = 100

T = TypeVar("T")
CacheEntry = tuple[str | None, str | None, Any, str | None]
log = logging.getLogger("aac.github")


# ---------------------------------------------------------------------------------------
# Process-wide shared state
# ---------------------------------------------------------------------------------------
class SharedWriteSlots(Protocol):
    """Write slots every process of the deployment sees (storage/write_slots.py)."""

    def hold(self, key: str, interval: float) -> AbstractAsyncContextManager[None]:
        """Hold ``key``'s slot for the body, then keep it free for ``interval`` seconds."""
        ...


class Pacer:
    """Serialises writes for one installation and keeps ``interval`` seconds between them:
    in this process with a lock, across processes through ``shared`` when given."""

    def __init__(
        self,
        interval: float = DEFAULT_PACING_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        shared: SharedWriteSlots | None = None,
        key: str = "",
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._shared = shared
        self._key = key
        self._lock = asyncio.Lock()
        self._last_finished: float | None = None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold the installation's write slot; waits until ``interval`` after the last write."""
        async with self._lock:
            if self._last_finished is not None:
                wait = self._last_finished + self.interval - self._clock()
                if wait > 0:
                    await self._sleep(wait)
            try:
                if self._shared is None:
                    yield
                else:
                    async with self._shared.hold(self._key, self.interval):
                        yield
            finally:
                self._last_finished = self._clock()


class EtagCache(MutableMapping[str, CacheEntry]):
    """gidgethub's response cache (URL -> ETag, Last-Modified, data, next page), LRU-bounded."""

    def __init__(self, maxsize: int = 512) -> None:
        self._maxsize = maxsize
        self._data: OrderedDict[str, CacheEntry] = OrderedDict()

    def __getitem__(self, key: str) -> CacheEntry:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: str, value: CacheEntry) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._maxsize:
            self._data.popitem(last=False)

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class TreeCache:
    """File lists of commits, least recently used first out, bounded by their total paths.

    A commit's tree never changes, so a hit is served without asking GitHub: the ETag cache
    would still revalidate each time, and would hold every entry's sha, mode, size and URL.
    """

    def __init__(self, max_paths: int = 250_000) -> None:
        self._max_paths = max_paths
        self._data: OrderedDict[Hashable, tuple[str, ...]] = OrderedDict()
        self._paths = 0
        # Repositories whose recursive tree GitHub truncates: not asked again.
        self.too_large: set[Hashable] = set()

    def get(self, key: Hashable) -> tuple[str, ...] | None:
        paths = self._data.get(key)
        if paths is not None:
            self._data.move_to_end(key)
        return paths

    def put(self, key: Hashable, paths: tuple[str, ...]) -> None:
        old = self._data.pop(key, None)
        self._paths += len(paths) - (len(old) if old is not None else 0)
        self._data[key] = paths
        while self._paths > self._max_paths and len(self._data) > 1:
            _, evicted = self._data.popitem(last=False)
            self._paths -= len(evicted)


class GithubShared:
    """State one process shares across all GitHub jobs: tokens, pacers, ETag and tree caches.

    Create one at start-up and hand it to every ``GithubProvider``. Keys are per
    installation (or per token), so nothing leaks between installations.
    """

    def __init__(
        self,
        *,
        pacing_seconds: float = DEFAULT_PACING_SECONDS,
        etag_cache_size: int = 512,
        tree_cache_paths: int = 250_000,
        token_refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
        now: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        write_slots: SharedWriteSlots | None = None,
    ) -> None:
        self.now = now
        self.sleep = sleep
        self.write_slots = write_slots
        self.tokens = InstallationTokenCache(refresh_margin=token_refresh_margin, clock=now)
        self.trees = TreeCache(tree_cache_paths)
        self._pacing_seconds = pacing_seconds
        self._etag_cache_size = etag_cache_size
        self._monotonic = monotonic
        self._pacers: dict[Hashable, Pacer] = {}
        self._caches: dict[Hashable, EtagCache] = {}

    def pacer(self, key: Hashable) -> Pacer:
        """The write pacer for one installation or token."""
        if key not in self._pacers:
            self._pacers[key] = Pacer(
                self._pacing_seconds,
                clock=self._monotonic,
                sleep=self.sleep,
                shared=self.write_slots,
                key=repr(key),
            )
        return self._pacers[key]

    def etag_cache(self, key: Hashable) -> EtagCache:
        """The ETag cache for one installation or token."""
        if key not in self._caches:
            self._caches[key] = EtagCache(self._etag_cache_size)
        return self._caches[key]


# ---------------------------------------------------------------------------------------
# gidgethub backend
# ---------------------------------------------------------------------------------------
class GitHubClient(GitHubAPI):
    """gidgethub over the project's ``httpx.AsyncClient``, with writes paced.

    gidgethub 6's own httpx backend imports ``httpx2`` when that is installed, so its
    transport errors would not be ``httpx`` ones; this backend keeps one HTTP library.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        requester: str,
        base_url: str,
        cache: MutableMapping[str, CacheEntry] | None = None,
        pacer: Pacer | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._pacer = pacer
        self._sleep = sleep
        super().__init__(requester, cache=cache, base_url=base_url)

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        if self._pacer is not None and method.upper() in WRITE_METHODS:
            async with self._pacer.slot():
                return await self._send(method, url, headers, body)
        return await self._send(method, url, headers, body)

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes]:
        response = await self._http.request(method, url, headers=dict(headers), content=body)
        return response.status_code, response.headers, response.content

    async def sleep(self, seconds: float) -> None:
        await self._sleep(seconds)


# ---------------------------------------------------------------------------------------
# Payloads: pure functions from our types to GitHub's JSON
# ---------------------------------------------------------------------------------------
def annotation_json(annotation: Annotation) -> dict[str, Any]:
    """One check-run annotation in GitHub's shape."""
    data: dict[str, Any] = {
        "path": annotation.path,
        "start_line": annotation.start_line,
        "end_line": annotation.end_line,
        "annotation_level": str(annotation.level),
        "message": annotation.message,
    }
    if annotation.title is not None:
        data["title"] = annotation.title
    if annotation.raw_details is not None:
        data["raw_details"] = annotation.raw_details
    return data


def check_run_output(status: CommitStatus) -> dict[str, Any]:
    """The output object; GitHub requires title and summary whenever output is sent."""
    output: dict[str, Any] = {
        "title": status.title or status.name,
        "summary": status.summary or status.description or status.name,
    }
    if status.text is not None:
        output["text"] = status.text
    return output


def check_run_fields(status: CommitStatus, *, now: datetime) -> dict[str, Any]:
    """Body of a check-run create or update, without head_sha and annotations."""
    data: dict[str, Any] = {
        "name": status.name,
        "status": str(status.state),
        "output": check_run_output(status),
    }
    if status.state is StatusState.COMPLETED:
        data["conclusion"] = str(status.conclusion or Conclusion.NEUTRAL)
        data["completed_at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if status.details_url is not None:
        data["details_url"] = status.details_url
    if status.external_id is not None:
        data["external_id"] = status.external_id
    if status.actions:
        data["actions"] = [
            {"label": a.label, "description": a.description, "identifier": a.identifier}
            for a in status.actions
        ]
    return data


_STATUS_STATES: dict[Conclusion | None, str] = {
    Conclusion.SUCCESS: "success",
    Conclusion.NEUTRAL: "success",
    Conclusion.SKIPPED: "success",
    Conclusion.FAILURE: "failure",
    Conclusion.ACTION_REQUIRED: "failure",
    Conclusion.TIMED_OUT: "error",
    Conclusion.CANCELLED: "error",
    None: "error",
}


def commit_status_json(status: CommitStatus, *, max_description: int) -> dict[str, Any]:
    """A commit status (token mode): pending until completed, then by conclusion."""
    if status.state is StatusState.COMPLETED:
        state = _STATUS_STATES.get(status.conclusion, "error")
    else:
        state = "pending"
    data: dict[str, Any] = {
        "state": state,
        "context": status.name,
        "description": clip(status.description, max_description),
    }
    if status.details_url is not None:
        data["target_url"] = status.details_url
    return data


def split_repository(repository: str) -> tuple[str, str]:
    """``"owner/name"`` -> ``("owner", "name")``."""
    owner, sep, name = repository.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ProviderError(f"not a GitHub repository name: {repository!r}")
    return owner, name


def web_url(api_url: str) -> str:
    """The web address behind an API base URL, for links people open in a browser.

    api.github.com -> github.com, api.<tenant>.ghe.com -> <tenant>.ghe.com, and GitHub
    Enterprise Server's ``https://host/api/v3`` -> ``https://host``.
    """
    parts = urlsplit(api_url.rstrip("/"))
    host = parts.netloc.lower()
    if host == "api.github.com" or (host.startswith("api.") and host.endswith(".ghe.com")):
        return f"{parts.scheme}://{host.removeprefix('api.')}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path.removesuffix("/api/v3"), "", ""))


def _previous_id(previous: PublishResult | None, kind: str, key: str) -> str | None:
    if previous is None or previous.kind != kind:
        return None
    return previous.ids.get(key)


# ---------------------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AppAuth:
    """Publish as a GitHub App installation (check runs, annotations, actions)."""

    credentials: AppCredentials
    installation_id: int


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """Publish with a personal access token (commit statuses instead of check runs)."""

    token: str = field(repr=False)


_APP_CAPABILITIES = Capabilities(check_runs=True, annotations=True, requested_actions=True)
_TOKEN_CAPABILITIES = Capabilities()


# GitHub's legacy ``permission`` values that may run ``/aac`` commands ("maintain" and custom
# roles built on write read as "write").
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


class GithubProvider:
    """``CiProvider`` for GitHub.com and GitHub Enterprise Server (``api_url`` .../api/v3)."""

    name: str = "github"
    limits: PlatformLimits = GITHUB_LIMITS
    capabilities: Capabilities

    def __init__(
        self,
        auth: AppAuth | TokenAuth,
        *,
        http: httpx.AsyncClient,
        shared: GithubShared,
        api_url: str = DEFAULT_API_URL,
        login: str | None = None,
        org: str | None = None,
        requester: str = "aac-bot",
        max_attempts: int = 3,
        backoff_seconds: float = 0.5,
    ) -> None:
        self._auth = auth
        self._org = org  # named in errors, so an operator knows whose credentials failed
        self._shared = shared
        self._login = login
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff_seconds
        api_url = api_url.rstrip("/")
        self._api_url = api_url
        self._http = http
        if isinstance(auth, AppAuth):
            self.capabilities = _APP_CAPABILITIES
            self._key: Hashable = (api_url, "installation", auth.installation_id)
        else:
            self.capabilities = _TOKEN_CAPABILITIES
            digest = hashlib.sha256(auth.token.encode()).hexdigest()[:16]
            self._key = (api_url, "token", digest)
        self._gh = GitHubClient(
            http,
            requester=requester,
            base_url=api_url,
            cache=shared.etag_cache(self._key),
            pacer=shared.pacer(self._key),
            sleep=shared.sleep,
        )
        # Minting is not content creation: unpaced, uncached.
        self._auth_gh = GitHubClient(http, requester=requester, base_url=api_url)
        # Trees can be megabytes; GithubShared.trees keeps just their paths.
        self._tree_gh = GitHubClient(http, requester=requester, base_url=api_url)

    @classmethod
    def for_app(
        cls,
        *,
        app_id: int | str,
        private_key: str,
        installation_id: int,
        http: httpx.AsyncClient,
        shared: GithubShared,
        api_url: str = DEFAULT_API_URL,
        login: str | None = None,
        **options: Any,
    ) -> GithubProvider:
        """A provider for one App installation; ``login`` defaults to ``<app slug>[bot]``."""
        auth = AppAuth(AppCredentials(str(app_id), private_key), installation_id)
        return cls(auth, http=http, shared=shared, api_url=api_url, login=login, **options)

    @classmethod
    def for_token(
        cls,
        *,
        token: str,
        http: httpx.AsyncClient,
        shared: GithubShared,
        api_url: str = DEFAULT_API_URL,
        login: str | None = None,
        **options: Any,
    ) -> GithubProvider:
        """A provider for a personal access token; ``login`` defaults to the token's user."""
        return cls(
            TokenAuth(token), http=http, shared=shared, api_url=api_url, login=login, **options
        )

    # -- the protocol -----------------------------------------------------------------
    async def update_commit_status(
        self, ctx: CiContext, status: CommitStatus, *, previous: PublishResult | None = None
    ) -> PublishResult:
        """Create or update the check run (App) or commit status (token) for (sha, suite)."""
        if isinstance(self._auth, AppAuth):
            return await self._publish_check_run(ctx, status, previous, self._auth)
        return await self._publish_commit_status(ctx, status)

    async def post_comment_to_pr(
        self, ctx: CiContext, message: CommentBody, *, previous: PublishResult | None = None
    ) -> PublishResult:
        """Edit in place, or create, the one comment for (PR, suite)."""
        if ctx.pr is None:
            return PublishResult(
                attempted=False, succeeded=False, kind="comment", reason="no pull request"
            )
        body = comment_within_limit(message, self.limits, noun="comment", platform="GitHub")
        owner, repo = split_repository(ctx.repository)
        login = await self.bot_login()
        known_id = _previous_id(previous, "comment", "comment_id")
        author = previous.ids.get("author") if previous is not None else None
        if author is not None and author.lower() != login.lower():
            # Written as another identity (a token before the App was installed): not ours
            # to edit; the marker search finds ours, or none and we create it.
            known_id = None
        comment = await self._call(
            "publish PR comment",
            partial(
                self._upsert_comment,
                url_vars={"owner": owner, "repo": repo, "number": ctx.pr},
                body=body,
                marker=message.marker,
                login=login,
                known_id=known_id,
            ),
        )
        return PublishResult(
            attempted=True,
            succeeded=True,
            kind="comment",
            ids={"comment_id": str(comment["id"]), "author": login},
            url=comment.get("html_url"),
        )

    async def bot_login(self) -> str:
        """The login our comments are authored by (App: ``slug[bot]``; token: its user)."""
        if self._login is None:
            self._login = await self._call("look up bot login", self._fetch_login)
        return self._login

    # -- commit statuses (token) ------------------------------------------------------
    async def _publish_commit_status(self, ctx: CiContext, status: CommitStatus) -> PublishResult:
        owner, repo = split_repository(ctx.repository)
        data = commit_status_json(status, max_description=self.limits.status_description_chars)
        url_vars = {"owner": owner, "repo": repo, "sha": ctx.sha}

        async def create(token: str, attempt: int) -> Any:
            # Repeating a status POST is harmless: the newest per context wins.
            return await self._gh.post(
                "/repos/{owner}/{repo}/statuses/{sha}", url_vars, data=data, oauth_token=token
            )

        created = await self._call("create commit status", create)
        return PublishResult(
            attempted=True,
            succeeded=True,
            kind="commit_status",
            ids={"status_id": str(created["id"]), "context": status.name},
            url=status.details_url,
        )

    # -- check runs (App) -------------------------------------------------------------
    async def _publish_check_run(
        self, ctx: CiContext, status: CommitStatus, previous: PublishResult | None, auth: AppAuth
    ) -> PublishResult:
        owner, repo = split_repository(ctx.repository)
        repo_vars = {"owner": owner, "repo": repo}
        fields = check_run_fields(status, now=self._shared.now())
        annotations = [annotation_json(a) for a in status.annotations]
        run, sent, created = await self._call(
            "create check run",
            partial(
                self._find_or_create_run,
                repo_vars=repo_vars,
                sha=ctx.sha,
                status=status,
                app_id=auth.credentials.app_id,
                known_id=_previous_id(previous, "check_run", "check_run_id"),
                fields=fields,
                annotations=annotations,
            ),
        )
        # An existing run still needs its new state; then the remaining annotations
        # go in further updates of <= 50 (GitHub appends them), resuming from the
        # count GitHub reports so a retried or rescheduled job never duplicates one.
        pending: dict[str, Any] | None = None if created else fields
        while pending is not None or sent < len(annotations):
            run, sent = await self._call(
                "update check run",
                partial(
                    self._patch_run,
                    url_vars={**repo_vars, "id": run["id"]},
                    fields=pending,
                    output=check_run_output(status),
                    annotations=annotations,
                    sent=sent,
                ),
            )
            pending = None
        return PublishResult(
            attempted=True,
            succeeded=True,
            kind="check_run",
            ids={"check_run_id": str(run["id"])},
            url=run.get("html_url"),
        )

    async def _find_or_create_run(
        self,
        token: str,
        attempt: int,
        *,
        repo_vars: dict[str, str],
        sha: str,
        status: CommitStatus,
        app_id: str,
        known_id: str | None,
        fields: dict[str, Any],
        annotations: list[dict[str, Any]],
    ) -> tuple[dict[str, Any], int, bool]:
        """(run, annotations already on it, created now). Safe to repeat: it looks first."""
        run: dict[str, Any] | None = None
        if known_id is not None:
            try:
                run = await self._gh.getitem(
                    "/repos/{owner}/{repo}/check-runs/{id}",
                    {**repo_vars, "id": known_id},
                    oauth_token=token,
                )
            except gidgethub.HTTPException as exc:
                if not is_status(exc, 404):
                    raise
        if run is None:
            run = await self._find_run(
                token, repo_vars=repo_vars, sha=sha, status=status, app_id=app_id
            )
        if run is not None:
            return run, _annotations_count(run), False
        chunk = annotations[: self._chunk_size]
        data = {**fields, "head_sha": sha}
        if chunk:
            data["output"] = {**data["output"], "annotations": chunk}
        created = await self._gh.post(
            "/repos/{owner}/{repo}/check-runs", repo_vars, data=data, oauth_token=token
        )
        return created, len(chunk), True

    async def _find_run(
        self,
        token: str,
        *,
        repo_vars: dict[str, str],
        sha: str,
        status: CommitStatus,
        app_id: str,
    ) -> dict[str, Any] | None:
        """Our run for (sha, name, external_id), by listing the commit's check runs."""
        url_vars: dict[str, Any] = {
            **repo_vars,
            "ref": sha,
            "check_name": status.name,
            "filter": "all",
            "per_page": PER_PAGE,
        }
        async for run in self._gh.getiter(
            "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,filter,per_page}",
            url_vars,
            oauth_token=token,
            iterable_key="check_runs",
        ):
            if (
                run.get("name") == status.name
                and (run.get("external_id") or "") == (status.external_id or "")
                and str((run.get("app") or {}).get("id")) == app_id
            ):
                return dict(run)
        return None

    async def _patch_run(
        self,
        token: str,
        attempt: int,
        *,
        url_vars: dict[str, Any],
        fields: dict[str, Any] | None,
        output: dict[str, Any],
        annotations: list[dict[str, Any]],
        sent: int,
    ) -> tuple[dict[str, Any], int]:
        """One update: new state (if any) plus the next chunk of annotations."""
        if attempt > 1:
            # The failed attempt may have landed: trust GitHub's count, not ours.
            current = await self._gh.getitem(
                "/repos/{owner}/{repo}/check-runs/{id}", url_vars, oauth_token=token
            )
            sent = min(_annotations_count(current), len(annotations))
            if fields is None and sent >= len(annotations):
                return current, sent
        chunk = annotations[sent : sent + self._chunk_size]
        data: dict[str, Any] = dict(fields) if fields is not None else {"output": dict(output)}
        if chunk:
            data["output"] = {**data.get("output", output), "annotations": chunk}
        updated = await self._gh.patch(
            "/repos/{owner}/{repo}/check-runs/{id}", url_vars, data=data, oauth_token=token
        )
        return updated, sent + len(chunk)

    @property
    def _chunk_size(self) -> int:
        return self.limits.annotations_per_request or 50

    # -- comments ---------------------------------------------------------------------
    async def _upsert_comment(
        self,
        token: str,
        attempt: int,
        *,
        url_vars: dict[str, Any],
        body: str,
        marker: str,
        login: str,
        known_id: str | None,
    ) -> dict[str, Any]:
        """Edit the known comment, else our marked one, else create. Safe to repeat."""
        if known_id is not None:
            try:
                return await self._edit_comment(token, url_vars, known_id, body)
            except gidgethub.HTTPException as exc:
                if not is_status(exc, 404):  # 404: deleted by someone; find or recreate
                    raise
        existing = await self._find_comment(token, url_vars, marker=marker, login=login)
        if existing is not None:
            if existing.get("body") == body:
                return existing
            return await self._edit_comment(token, url_vars, str(existing["id"]), body)
        created: dict[str, Any] = await self._gh.post(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            url_vars,
            data={"body": body},
            oauth_token=token,
        )
        return created

    async def _edit_comment(
        self, token: str, url_vars: dict[str, Any], comment_id: str, body: str
    ) -> dict[str, Any]:
        edited: dict[str, Any] = await self._gh.patch(
            "/repos/{owner}/{repo}/issues/comments/{comment_id}",
            {**url_vars, "comment_id": comment_id},
            data={"body": body},
            oauth_token=token,
        )
        return edited

    async def _find_comment(
        self, token: str, url_vars: dict[str, Any], *, marker: str, login: str
    ) -> dict[str, Any] | None:
        """Our own comment carrying ``marker``; others' comments never match."""
        async for comment in self._gh.getiter(
            "/repos/{owner}/{repo}/issues/{number}/comments{?per_page}",
            {**url_vars, "per_page": PER_PAGE},
            oauth_token=token,
        ):
            author = str((comment.get("user") or {}).get("login", ""))
            if author.lower() == login.lower() and marker in str(comment.get("body") or ""):
                return dict(comment)
        return None

    # -- repository reads and actions used by the webhook handlers ---------------------
    def file_url(self, repository: str, path: str, ref: str) -> str:
        """Where a person views ``path`` at ``ref`` in the browser."""
        owner, repo = split_repository(repository)
        return f"{web_url(self._api_url)}/{owner}/{repo}/blob/{quote(ref)}/{quote(path)}"

    async def get_file(self, repository: str, path: str, ref: str) -> bytes | None:
        """A file's bytes at ``ref`` through the contents API; None when it does not exist."""
        owner, repo = split_repository(repository)

        async def fetch(token: str, attempt: int) -> bytes | None:
            try:
                item = await self._gh.getitem(
                    "/repos/{owner}/{repo}/contents/{+path}{?ref}",
                    {"owner": owner, "repo": repo, "path": path, "ref": ref},
                    oauth_token=token,
                )
            except gidgethub.HTTPException as exc:
                if is_status(exc, 404):
                    return None
                raise
            if not isinstance(item, dict) or item.get("type") != "file":
                return None
            return base64.b64decode(str(item.get("content") or ""))

        return await self._call(f"read {path}", fetch)

    async def repository_files(self, repository: str, sha: str) -> tuple[str, ...] | None:
        """Every file path in ``repository`` at commit ``sha``, from one recursive tree read,
        cached per (repository, sha).

        None when there is no tree to read, or when GitHub truncates it (over 100,000 entries
        or 7 MB): a partial list cannot tell a missing file from an unlisted one. Such a
        repository is logged once and not asked again by this process.
        """
        trees = self._shared.trees
        repo_key = (self._key, repository)
        if repo_key in trees.too_large:
            return None
        cached = trees.get((*repo_key, sha))
        if cached is not None:
            return cached
        owner, repo = split_repository(repository)

        async def fetch(token: str, attempt: int) -> dict[str, Any] | None:
            try:
                tree: dict[str, Any] = await self._tree_gh.getitem(
                    "/repos/{owner}/{repo}/git/trees/{sha}{?recursive}",
                    {"owner": owner, "repo": repo, "sha": sha, "recursive": 1},
                    oauth_token=token,
                )
            except gidgethub.HTTPException as exc:
                # 404: no such commit; 409: an empty repository; 422: not a tree-ish.
                if any(is_status(exc, code) for code in (404, 409, 422)):
                    return None
                raise
            return tree

        tree = await self._call("read repository tree", fetch)
        if tree is None:
            return None
        if tree.get("truncated"):
            trees.too_large.add(repo_key)
            log.warning(
                "repository tree too large to list; annotation paths fall back to heuristics",
                extra={"repository": repository},
            )
            return None
        paths = tuple(
            str(entry["path"]) for entry in tree.get("tree") or () if entry.get("type") == "blob"
        )
        trees.put((*repo_key, sha), paths)
        return paths

    async def list_artifacts(self, repository: str, run_id: int) -> list[Artifact]:
        """The artifacts of a workflow run (all pages)."""
        owner, repo = split_repository(repository)

        async def fetch(token: str, attempt: int) -> list[Artifact]:
            found: list[Artifact] = []
            async for item in self._gh.getiter(
                "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts{?per_page}",
                {"owner": owner, "repo": repo, "run_id": run_id, "per_page": PER_PAGE},
                iterable_key="artifacts",
                oauth_token=token,
            ):
                found.append(
                    Artifact(
                        id=int(item["id"]),
                        name=str(item.get("name") or ""),
                        size=int(item.get("size_in_bytes") or 0),
                        expired=bool(item.get("expired")),
                    )
                )
            return found

        return await self._call("list workflow run artifacts", fetch)

    async def download_artifact(
        self, repository: str, artifact_id: int, *, max_bytes: int
    ) -> bytes:
        """An artifact's zip. GitHub answers with a redirect to a pre-signed URL, which is
        fetched without our token; more than ``max_bytes`` raises TooLarge."""
        owner, repo = split_repository(repository)
        url = f"{self._api_url}/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/zip"

        async def fetch(token: str, attempt: int) -> bytes:
            headers = {"authorization": f"token {token}", "accept": "application/vnd.github+json"}
            response = await self._http.get(url, headers=headers, follow_redirects=False)
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("location", "")
                async with self._http.stream("GET", location) as blob:
                    return await _read_bounded(blob, max_bytes, artifact_id)
            if response.status_code != 200:
                raise gidgethub.HTTPException(
                    http.HTTPStatus(response.status_code), "artifact download failed"
                )
            if len(response.content) > max_bytes:
                raise TooLarge(f"artifact {artifact_id} is larger than {max_bytes:,} bytes")
            return response.content

        return await self._call(f"download artifact {artifact_id}", fetch)

    async def collaborator_permission(self, repository: str, username: str) -> str:
        """``admin``, ``write``, ``read`` or ``none``: GitHub's legacy ``permission``, which maps
        ``maintain`` and custom roles built on write to ``write`` (``role_name`` would not)."""
        owner, repo = split_repository(repository)

        async def fetch(token: str, attempt: int) -> str:
            try:
                item = await self._gh.getitem(
                    "/repos/{owner}/{repo}/collaborators/{username}/permission",
                    {"owner": owner, "repo": repo, "username": username},
                    oauth_token=token,
                )
            except gidgethub.HTTPException as exc:
                if is_status(exc, 404):
                    return "none"
                raise
            return str(item.get("permission") or "none")

        return await self._call("read collaborator permission", fetch)

    async def may_run_commands(self, repository: str, user: str) -> bool:
        """True for users with write access or more (write, maintain, admin)."""
        return await self.collaborator_permission(repository, user) in WRITE_PERMISSIONS

    async def answer_command(self, ctx: CiContext, user: str, message: str) -> None:
        """Reply to ``user``'s ``/aac`` command with a new comment on the pull request."""
        if ctx.pr is None:
            return
        owner, repo = split_repository(ctx.repository)

        async def send(token: str, attempt: int) -> None:
            if attempt > 1:
                return  # the failed attempt may have landed: a reply twice is noise
            await self._gh.post(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                {"owner": owner, "repo": repo, "number": ctx.pr},
                data={"body": f"@{user} {message}"},
                oauth_token=token,
            )

        await self._call("reply to an /aac command", send)

    async def pipeline_results(
        self, repository: str, pipeline_id: str, wanted: ArtifactFilter | None = None
    ) -> PipelineResults:
        """The workflow run's artifacts that ``wanted`` accepts (providers/github/results.py)."""
        from providers.github.results import workflow_run_results

        return await workflow_run_results(self, repository, int(pipeline_id), wanted)

    async def rerun_pipeline(self, repository: str, pipeline_id: str) -> bool:
        """Re-run the workflow run ``pipeline_id``; never in place: GitHub numbers the re-run
        as the run's next attempt (``run_attempt``)."""
        await self.rerun_workflow(repository, int(pipeline_id))
        return False

    async def installation_repositories(self) -> list[str]:
        """``owner/name`` of every repository the installation covers (all pages)."""

        async def fetch(token: str, attempt: int) -> list[str]:
            return [
                str(item["full_name"])
                async for item in self._gh.getiter(
                    "/installation/repositories{?per_page}",
                    {"per_page": PER_PAGE},
                    iterable_key="repositories",
                    oauth_token=token,
                )
            ]

        return await self._call("list installation repositories", fetch)

    async def rerun_workflow(self, repository: str, run_id: int) -> None:
        """Ask GitHub Actions to re-run a workflow run."""
        owner, repo = split_repository(repository)

        async def send(token: str, attempt: int) -> None:
            await self._gh.post(
                "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun",
                {"owner": owner, "repo": repo, "run_id": run_id},
                data={},
                oauth_token=token,
            )

        await self._call("re-run workflow", send)

    # -- credentials and the one call wrapper -----------------------------------------
    async def _fetch_login(self, token: str, attempt: int) -> str:
        if isinstance(self._auth, AppAuth):
            app = await self._gh.getitem("/app", jwt=self._auth.credentials.jwt())
            return f"{app['slug']}[bot]"
        user = await self._gh.getitem("/user", oauth_token=token)
        return str(user["login"])

    async def _token(self) -> str:
        auth = self._auth
        if isinstance(auth, TokenAuth):
            return auth.token
        return await self._shared.tokens.get(
            self._key,
            partial(
                mint_installation_token,
                self._auth_gh,
                auth.credentials,
                auth.installation_id,
                now=self._shared.now(),
            ),
        )

    async def _call(self, action: str, op: Callable[[str, int], Awaitable[T]]) -> T:
        """Run ``op(token, attempt)``: typed errors, bounded retries, one re-mint on 401."""
        attempt = 0
        reminted = False
        while True:
            attempt += 1
            token: str | None = None
            try:
                token = await self._token()
                return await op(token, attempt)
            except (gidgethub.HTTPException, httpx.TransportError, ProviderError) as exc:
                cause: BaseException = exc
                error = translate_error(exc, now=self._shared.now(), action=action, org=self._org)
            if (
                isinstance(error, AuthFailed)
                and isinstance(self._auth, AppAuth)
                and token is not None
                and is_status(cause, 401)
                and not reminted
            ):
                # Revoked or expired early: GitHub refused a token our cache still trusted.
                self._shared.tokens.invalidate(self._key, token)
                reminted = True
                attempt -= 1
                continue
            if isinstance(error, Transient) and attempt < self._max_attempts:
                await self._shared.sleep(self._backoff * 2 ** (attempt - 1))
                continue
            if error is cause:
                raise error
            raise error from cause


# ---------------------------------------------------------------------------------------
# Calls made as the App itself (setup commands)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AppIdentity:
    """Who a GitHub App is, as GitHub says (``GET /app``)."""

    app_id: int
    slug: str
    name: str

    @property
    def bot_login(self) -> str:
        """The login of the App's bot user, which authors its comments and events."""
        return f"{self.slug}[bot]"


@dataclass(frozen=True, slots=True)
class InstallationDetails:
    """One installation of the App as GitHub describes it, with the repositories it covers."""

    installation_id: int
    app_id: int
    account_login: str
    account_type: str
    repositories: tuple[str, ...]
    permissions: dict[str, str]
    suspended: bool  # if so, ``repositories`` is empty: GitHub mints no token to list them


class GithubAppClient:
    """Calls made as the App (its JWT): who it is, and what one installation covers.

    For the setup commands; publishing goes through ``GithubProvider``. Errors are the same
    typed ones (``translate_error``); a private key that cannot sign at all is ``AuthFailed``.
    """

    def __init__(
        self,
        *,
        app_id: int | str,
        private_key: str,
        http: httpx.AsyncClient,
        shared: GithubShared,
        api_url: str = DEFAULT_API_URL,
        requester: str = "aac-bot",
    ) -> None:
        self._credentials = AppCredentials(str(app_id), private_key)
        self._http = http
        self._shared = shared
        self._api_url = api_url.rstrip("/")
        self._requester = requester
        self._gh = GitHubClient(http, requester=requester, base_url=self._api_url)

    async def identity(self) -> AppIdentity:
        """``GET /app``: the App's id, slug and name."""
        data = await self._get("read the App", "/app", {})
        try:
            return AppIdentity(
                app_id=int(data["id"]),
                slug=str(data["slug"]),
                name=str(data.get("name") or data["slug"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError("GitHub returned a malformed App") from exc

    async def installation(self, installation_id: int) -> InstallationDetails:
        """``GET /app/installations/{id}`` for the account, then the installation's
        repositories with an installation token (``GET /installation/repositories``).

        A suspended installation comes without repositories: GitHub mints no token for it
        (403) until it is unsuspended.
        """
        data = await self._get(
            f"read installation {installation_id}",
            "/app/installations/{installation_id}",
            {"installation_id": installation_id},
        )
        account = data.get("account") or {}
        suspended = bool(data.get("suspended_at"))
        repositories: list[str] = []
        if not suspended:
            provider = GithubProvider(
                AppAuth(self._credentials, installation_id),
                http=self._http,
                shared=self._shared,
                api_url=self._api_url,
                requester=self._requester,
            )
            repositories = await provider.installation_repositories()
        try:
            return InstallationDetails(
                installation_id=int(data["id"]),
                app_id=int(data["app_id"]),
                account_login=str(account.get("login") or ""),
                account_type=str(account.get("type") or data.get("target_type") or ""),
                repositories=tuple(repositories),
                permissions={str(k): str(v) for k, v in (data.get("permissions") or {}).items()},
                suspended=suspended,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError("GitHub returned a malformed installation") from exc

    async def _get(self, action: str, url: str, url_vars: dict[str, Any]) -> dict[str, Any]:
        try:
            token = self._credentials.jwt()
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthFailed(
                f"the private key of App {self._credentials.app_id} cannot sign a JWT"
            ) from exc
        try:
            data = await self._gh.getitem(url, url_vars, jwt=token)
        except (gidgethub.HTTPException, httpx.TransportError) as exc:
            raise translate_error(exc, now=self._shared.now(), action=action) from exc
        if not isinstance(data, dict):
            raise ProviderError(f"GitHub {action}: expected an object")
        return data


@dataclass(frozen=True, slots=True)
class Artifact:
    """A workflow run artifact as listed by the Actions API."""

    id: int
    name: str
    size: int
    expired: bool


async def _read_bounded(response: httpx.Response, max_bytes: int, artifact_id: int) -> bytes:
    if response.status_code != 200:
        raise gidgethub.HTTPException(
            http.HTTPStatus(response.status_code), "artifact blob download failed"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"artifact {artifact_id} is larger than {max_bytes:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _annotations_count(run: Mapping[str, Any]) -> int:
    output = run.get("output") or {}
    return int(output.get("annotations_count") or 0)
