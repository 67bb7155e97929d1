"""GitLab adapter on python-gitlab: a commit status per (sha, suite) and one sticky MR note.

python-gitlab is synchronous: every call runs in a worker thread under one shared
``anyio.CapacityLimiter``, never on the event loop. Its clients always have a timeout and
retry 5xx a few times with short sleeps; a 429 (or an exhausted ``RateLimit-Remaining``) is
raised at once as ``RateLimited(retry_at)`` by our backend, so the job is rescheduled rather
than a thread sleeping on it. Every failure goes through ``providers.gitlab.errors``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
import gitlab
import gitlab.exceptions
import requests

# The base class of the ``backend=`` hook python-gitlab offers (its default backend).
from gitlab._backends.requests_backend import RequestsBackend, RequestsResponse

from providers.base import (
    GITLAB_LIMITS,
    ArtifactFilter,
    Capabilities,
    CommentBody,
    CommitStatus,
    Conclusion,
    PipelineResults,
    PlatformLimits,
    PublishResult,
    ResultFileBlob,
    StatusState,
    TooLarge,
    clip,
    comment_within_limit,
    refusal_reply,
)
from providers.context import CiContext
from providers.gitlab.errors import (
    RateLimitResponse,
    RetryLater,
    gitlab_message,
    is_status,
    translate_error,
)
from providers.gitlab.results import junit_jobs, report_cases, summary_count, xml_files

DEFAULT_BASE_URL = "https://gitlab.com"
DEFAULT_TIMEOUT_SECONDS = 20.0
# python-gitlab sleeps 0.1, 0.2, 0.4 s between these; never longer than MAX_SLEEP_SECONDS.
DEFAULT_MAX_RETRIES = 3
MAX_SLEEP_SECONDS = 2
DEFAULT_THREADS = 8
PER_PAGE = 100
DEVELOPER_ACCESS = 30
MAX_ARTIFACT_BYTES = 50 * 1024 * 1024
# GitLab answers a bare "403 Forbidden" to a retry the token's user may not make.
RETRY_FORBIDDEN = (
    "the token's user may not retry pipelines of {}: that needs the Developer role or above, "
    "and leave to merge into the protected branch the pipeline ran for (and a token with the "
    "api scope)"
)
_TRANSIENT = frozenset([500, 502, 503, 504, *range(520, 531)])
_TRANSITION = re.compile(r"Cannot transition status via :(\w+) from :(\w+)")

T = TypeVar("T")
log = logging.getLogger("aac.gitlab")


def utc_now() -> datetime:
    return datetime.now(UTC)


def token_digest(token: str) -> str:
    """A short, non-reversible key for caches keyed by token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def instance_url(base_url: str) -> str:
    """The instance's root URL, accepting ``https://host`` or ``https://host/api/v4``."""
    return base_url.rstrip("/").removesuffix("/api/v4").rstrip("/")


# ---------------------------------------------------------------------------------------
# python-gitlab, configured so it never sleeps long
# ---------------------------------------------------------------------------------------
class _Backend(RequestsBackend):
    """Raises on throttling instead of handing the response to python-gitlab's retry loop,
    which would sleep in the thread for as long as ``Retry-After`` says."""

    def http_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> RequestsResponse:
        result = super().http_request(method, url, *args, **kwargs)
        status = result.status_code
        headers = result.headers
        if status == 429 or (status >= 400 and headers.get("RateLimit-Remaining") == "0"):
            raise RateLimitResponse(status, headers, result.reason or "")
        if status in _TRANSIENT:
            retry_after = headers.get("Retry-After", "")
            if retry_after and not _short(retry_after):
                raise RetryLater(status, retry_after)
            # python-gitlab would sleep until ``RateLimit-Reset`` (the end of the rate-limit
            # window, which GitLab sends on every response) before retrying a 5xx; without
            # these headers it backs off 0.1, 0.2, 0.4 s instead.
            headers.pop("Retry-After", None)
            headers.pop("RateLimit-Reset", None)
        return result


def _short(retry_after: str) -> bool:
    return retry_after.strip().isdigit() and int(retry_after) <= MAX_SLEEP_SECONDS


class _Client(gitlab.Gitlab):
    """``gitlab.Gitlab`` whose every request retries 5xx at most ``max_retries`` times and
    leaves 429s to the backend (python-gitlab's defaults: 10 retries, sleeping on 429s)."""

    def __init__(self, *args: Any, max_retries: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._aac_max_retries = max_retries

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["obey_rate_limit"] = False
        # A caller may refuse blind retries (a create that is not safe to repeat).
        kwargs.setdefault("retry_transient_errors", True)
        kwargs["max_retries"] = self._aac_max_retries
        return super().http_request(verb, path, *args, **kwargs)


# ---------------------------------------------------------------------------------------
# Process-wide shared state
# ---------------------------------------------------------------------------------------
class GitlabShared:
    """State one process shares across all GitLab jobs: the thread limiter, one client per
    (instance, token) and the login each token acts as. Create one at start-up."""

    def __init__(
        self,
        *,
        max_threads: int = DEFAULT_THREADS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.now = now
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self._max_threads = max_threads
        self._limiter: anyio.CapacityLimiter | None = None
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], gitlab.Gitlab] = {}
        self.logins: dict[tuple[str, str], str] = {}

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """Bounds the worker threads python-gitlab calls run in (created on first use)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._max_threads)
        return self._limiter

    def client(self, base_url: str, token: str) -> gitlab.Gitlab:
        """The one python-gitlab client for this instance and token."""
        key = (base_url, token_digest(token))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = _Client(
                    base_url,
                    private_token=token,
                    timeout=self.timeout_seconds,
                    per_page=PER_PAGE,
                    user_agent="aac-bot",
                    max_retries=self.max_retries,
                    backend=_Backend,
                )
            return self._clients[key]


# ---------------------------------------------------------------------------------------
# Payloads: pure functions from our types to GitLab's
# ---------------------------------------------------------------------------------------
_FINISHED = {
    Conclusion.SUCCESS: "success",
    Conclusion.NEUTRAL: "success",
    Conclusion.SKIPPED: "success",
    Conclusion.FAILURE: "failed",
    Conclusion.ACTION_REQUIRED: "failed",
    Conclusion.TIMED_OUT: "failed",
    Conclusion.CANCELLED: "canceled",
}


def gitlab_state(status: CommitStatus) -> str:
    """GitLab's commit status state: pending, running, then success, failed or canceled."""
    if status.state is StatusState.QUEUED:
        return "pending"
    if status.state is StatusState.IN_PROGRESS:
        return "running"
    return _FINISHED.get(status.conclusion or Conclusion.NEUTRAL, "failed")


def status_name(ctx: CiContext) -> str:
    """The status's name in GitLab's pipeline view: ``aac/<suite>``."""
    return f"aac/{ctx.suite}"


def pipeline_id_of(ctx: CiContext) -> int | None:
    """The GitLab pipeline a cycle came from, to attach the status to (never another SCM's)."""
    if ctx.source != "gitlab" or ctx.pipeline_id is None or not ctx.pipeline_id.isdigit():
        return None
    return int(ctx.pipeline_id)


def status_json(ctx: CiContext, status: CommitStatus, *, max_description: int) -> dict[str, Any]:
    """Body of ``POST /projects/:id/statuses/:sha``. With a pipeline id the status joins that
    pipeline; a ``ref`` beside it could make GitLab open a stray external pipeline instead.
    A merge request's status names no ref either: its pipelines run on
    ``refs/merge-requests/<iid>/head``, so the source branch would open an external pipeline
    that then becomes the MR's head pipeline; without one GitLab joins the commit's newest."""
    data: dict[str, Any] = {
        "state": gitlab_state(status),
        "name": status_name(ctx),
        "description": clip(status.description, max_description),
    }
    if status.details_url is not None:
        data["target_url"] = status.details_url
    pipeline_id = pipeline_id_of(ctx)
    if pipeline_id is not None:
        data["pipeline_id"] = pipeline_id
    elif ctx.ref and ctx.pr is None:
        data["ref"] = ctx.ref
    return data


# A pipeline's statuses while it runs, and those a retry re-runs jobs from (GitLab's retry
# re-runs only failed and canceled jobs: a passed pipeline's answers 201 and runs nothing).
PIPELINE_RUNNING = frozenset(
    {"created", "waiting_for_resource", "preparing", "pending", "running", "scheduled"}
)
PIPELINE_RETRYABLE = frozenset({"failed", "canceled"})


def refusal_note(user: str, command: str) -> str:
    """The reply to a refused ``/aac <command>`` from ``user`` (a GitLab username)."""
    return refusal_reply(
        f"@{user}", "project members with the Developer role or above", "merge request", command
    )


def _previous(previous: PublishResult | None, kind: str) -> dict[str, str]:
    return dict(previous.ids) if previous is not None and previous.kind == kind else {}


# ---------------------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------------------
class GitlabProvider:
    """``CiProvider`` for GitLab.com and self-managed GitLab; repositories are
    ``path_with_namespace`` (``group/sub/project``)."""

    name: str = "gitlab"
    limits: PlatformLimits = GITLAB_LIMITS
    capabilities: Capabilities = Capabilities(commit_status=True, comments=True)

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str,
        org: str,
        shared: GitlabShared,
        max_artifact_bytes: int = MAX_ARTIFACT_BYTES,
    ) -> None:
        self._base_url = instance_url(base_url)
        self._org = org
        self._shared = shared
        self._key = (self._base_url, token_digest(token))
        self._gl = shared.client(self._base_url, token)
        self._max_artifact_bytes = max_artifact_bytes

    def __repr__(self) -> str:
        return f"GitlabProvider(base_url={self._base_url!r}, org={self._org!r})"

    # -- the protocol -----------------------------------------------------------------
    async def update_commit_status(
        self, ctx: CiContext, status: CommitStatus, *, previous: PublishResult | None = None
    ) -> PublishResult:
        """Move the ``aac/<suite>`` status of ``ctx.sha`` to the state ``status`` says."""
        data = status_json(ctx, status, max_description=self.limits.status_description_chars)
        known = _previous(previous, "commit_status")
        ids = {"name": data["name"], "sha": ctx.sha, "state": data["state"]}
        if "pipeline_id" in data:
            ids["pipeline_id"] = str(data["pipeline_id"])
        if (known.get("sha"), known.get("name"), known.get("state")) == (
            ctx.sha,
            ids["name"],
            ids["state"],
        ):
            # GitLab cannot move a status to the state it is in; nothing to do.
            return PublishResult(
                True,
                True,
                "commit_status",
                ids=known,
                url=status.details_url,
                reason=f"already {ids['state']}",
            )
        created = await self._call(
            "set commit status", partial(self._create_status, ctx.repository, ctx.sha, data)
        )
        if isinstance(created, str):  # GitLab kept the state it had
            same = (known.get("sha"), known.get("name")) == (ctx.sha, ids["name"])
            return PublishResult(
                True,
                True,
                "commit_status",
                ids={**(known if same else {}), **ids, "state": created},
                url=status.details_url,
                reason=f"already {created}",
            )
        ids["status_id"] = str(created["id"])
        if created.get("pipeline_id") is not None:
            ids["pipeline_id"] = str(created["pipeline_id"])
        return PublishResult(True, True, "commit_status", ids=ids, url=status.details_url)

    async def post_comment_to_pr(
        self, ctx: CiContext, message: CommentBody, *, previous: PublishResult | None = None
    ) -> PublishResult:
        """Edit in place, or create, the one note for (MR, suite)."""
        if ctx.pr is None:
            return PublishResult(False, False, "comment", reason="no merge request")
        body = comment_within_limit(message, self.limits, noun="note", platform="GitLab")
        login = await self.bot_login()
        known = _previous(previous, "comment")
        known_id = known.get("note_id") if known.get("author", login) == login else None
        note = await self._call(
            "publish MR note",
            partial(
                self._upsert_note,
                ctx.repository,
                ctx.pr,
                body=body,
                marker=message.marker,
                login=login,
                known_id=known_id,
            ),
        )
        note_id = str(note["id"])
        url = f"{self._base_url}/{ctx.repository}/-/merge_requests/{ctx.pr}#note_{note_id}"
        return PublishResult(
            True, True, "comment", ids={"note_id": note_id, "author": login}, url=url
        )

    # -- optional capabilities --------------------------------------------------------
    async def refuse_command(self, ctx: CiContext, user: str, command: str) -> None:
        """Tell ``user`` on the MR that ``/aac <command>`` needs Developer access or above."""
        await self._reply(ctx, refusal_note(user, command), "reply to a refused command")

    async def answer_command(self, ctx: CiContext, user: str, message: str) -> None:
        """Reply to ``user``'s ``/aac`` command with a new note on the MR."""
        await self._reply(ctx, f"@{user} {message}", "reply to an /aac command")

    async def _reply(self, ctx: CiContext, body: str, action: str) -> None:
        iid = ctx.pr
        if iid is None:
            return

        def create() -> None:
            project = self._gl.projects.get(ctx.repository, lazy=True)
            # Not retried blindly: a repeated reply is noise, a lost one only a missed hint.
            project.mergerequests.get(iid, lazy=True).notes.create(
                {"body": body}, retry_transient_errors=False
            )

        await self._call(action, create)

    async def rerun_pipeline(self, repository: str, pipeline_id: str) -> bool:
        """Retry the failed and canceled jobs of pipeline ``pipeline_id`` (GitLab keeps the
        pipeline and its id; ``POST /projects/:id/pipelines/:pipeline_id/retry``): in place,
        unless the pipeline ended with nothing to retry (GitLab then runs nothing)."""

        def retry() -> bool:
            project = self._gl.projects.get(repository, lazy=True)
            pipeline = project.pipelines.get(int(pipeline_id))
            status = str(pipeline.status)
            if status in PIPELINE_RUNNING:
                return True  # running again already (an earlier ask): its hook comes again
            if status not in PIPELINE_RETRYABLE:
                return False
            pipeline.retry()
            return True

        return await self._call(
            f"retry pipeline {pipeline_id}", retry, forbidden=RETRY_FORBIDDEN.format(repository)
        )

    async def bot_login(self) -> str:
        """The username the token acts as (``GET /user``, once per token and process)."""
        login = self._shared.logins.get(self._key)
        if login is None:
            user = await self._call("look up the token's user", partial(self._gl.http_get, "/user"))
            login = str(user["username"]) if isinstance(user, dict) else ""
            self._shared.logins[self._key] = login
        return login

    def file_url(self, repository: str, path: str, ref: str) -> str:
        """Where a person views ``path`` at ``ref`` in the browser."""
        return f"{self._base_url}/{repository}/-/blob/{quote(ref)}/{quote(path)}"

    async def get_file(self, repository: str, path: str, ref: str) -> bytes | None:
        """A file's bytes at ``ref`` through the repository files API; None when absent."""

        def fetch() -> bytes | None:
            project = self._gl.projects.get(repository, lazy=True)
            try:
                item = project.files.get(file_path=path, ref=ref)
            except gitlab.exceptions.GitlabGetError as exc:
                if is_status(exc, 404) and "file" in gitlab_message(exc).lower():
                    return None
                raise
            return base64.b64decode(str(item.content or ""))

        return await self._call(f"read {path}", fetch)

    async def may_run_commands(self, repository: str, user: str) -> bool:
        """True when ``user`` has Developer access (30) or more, inherited from groups too."""

        def fetch() -> bool:
            found = self._gl.users.list(username=user, get_all=False)
            if not found:
                return False
            project = self._gl.projects.get(repository, lazy=True)
            try:
                member = project.members_all.get(found[0].id)
            except gitlab.exceptions.GitlabGetError as exc:
                if is_status(exc, 404) and "project" not in gitlab_message(exc).lower():
                    return False  # not a member (a vanished project stays NotFound)
                raise
            state = getattr(member, "state", "active")
            return state == "active" and int(member.access_level) >= DEVELOPER_ACCESS

        return await self._call("read project membership", fetch)

    async def pipeline_results(
        self, repository: str, pipeline_id: str, wanted: ArtifactFilter | None = None
    ) -> PipelineResults:
        """The pipeline's test report; when it has no cases, the JUnit XML files found in the
        artifact archives of the jobs that uploaded ``artifacts:reports:junit``. ``wanted``
        (artifact-name globs, a GitHub notion) does not apply: the pipeline itself declares
        which of its jobs' files are JUnit reports."""
        summary = await self._call(
            "read pipeline test report summary",
            partial(self._pipeline_get, repository, pipeline_id, "test_report_summary"),
        )
        if summary_count(summary) > 0:
            report = await self._call(
                "read pipeline test report",
                partial(self._pipeline_get, repository, pipeline_id, "test_report"),
            )
            cases = report_cases(report)
            if cases:
                return PipelineResults(cases=cases, origin="test_report")
        files = await self._call(
            "read pipeline JUnit artifacts", partial(self._junit_files, repository, pipeline_id)
        )
        return PipelineResults(files=files, origin="artifacts" if files else "")

    # -- blocking calls (run in worker threads) ---------------------------------------
    def _create_status(
        self, repository: str, sha: str, data: dict[str, Any]
    ) -> dict[str, Any] | str:
        """The created status, or the state GitLab kept when it refused the transition."""
        project = self._gl.projects.get(repository, lazy=True)
        try:
            created = project.commits.get(sha, lazy=True).statuses.create(data)
        except gitlab.exceptions.GitlabCreateError as exc:
            match = _TRANSITION.search(gitlab_message(exc)) if is_status(exc, 400) else None
            if match is None:
                raise
            # "Cannot transition status via :run from :running": it already is (or is past)
            # what we asked for; GitLab keeps one running status per name and pipeline.
            return match.group(2)
        return dict(created.attributes)

    def _upsert_note(
        self,
        repository: str,
        iid: int,
        *,
        body: str,
        marker: str,
        login: str,
        known_id: str | None,
    ) -> dict[str, Any]:
        """Edit the known note, else our marked one, else create. Safe to repeat."""
        notes = self._gl.projects.get(repository, lazy=True).mergerequests.get(iid, lazy=True).notes
        if known_id is not None:
            try:
                return dict(notes.update(int(known_id), {"body": body}))
            except gitlab.exceptions.GitlabUpdateError as exc:
                if not is_status(exc, 404):  # 404: deleted by someone; find or recreate
                    raise
        attempt = 0
        while True:
            for note in self._our_notes(notes, login=login, marker=marker):
                if note.get("body") == body:
                    return note
                return dict(notes.update(int(note["id"]), {"body": body}))
            try:
                # Not retried blindly: a 5xx or a timeout may hide a note GitLab did create,
                # so each retry looks for it first.
                created = notes.create({"body": body}, retry_transient_errors=False)
            except (gitlab.exceptions.GitlabCreateError, requests.RequestException) as exc:
                code = exc.response_code if isinstance(exc, gitlab.exceptions.GitlabError) else None
                transient = code in _TRANSIENT or isinstance(
                    exc, requests.Timeout | requests.ConnectionError
                )
                if not transient or attempt >= self._shared.max_retries:
                    raise
                time.sleep(0.1 * 2**attempt)
                attempt += 1
                continue
            return dict(created.attributes)

    @staticmethod
    def _our_notes(notes: Any, *, login: str, marker: str) -> Iterator[dict[str, Any]]:
        """Notes written by ``login`` carrying ``marker``, oldest first; never system notes."""
        for note in notes.list(iterator=True, per_page=PER_PAGE, sort="asc", order_by="created_at"):
            data = note.attributes
            author = str((data.get("author") or {}).get("username", ""))
            if not data.get("system") and author == login and marker in str(data.get("body") or ""):
                yield data

    def _pipeline_get(self, repository: str, pipeline_id: int | str, report: str) -> dict[str, Any]:
        pipeline = self._gl.projects.get(repository, lazy=True).pipelines.get(
            pipeline_id, lazy=True
        )
        return dict(getattr(pipeline, report).get().attributes)

    def _junit_files(self, repository: str, pipeline_id: int | str) -> tuple[ResultFileBlob, ...]:
        project = self._gl.projects.get(repository, lazy=True)
        pipeline = project.pipelines.get(pipeline_id, lazy=True)
        jobs = [job.attributes for job in pipeline.jobs.list(iterator=True, per_page=PER_PAGE)]
        blobs: list[ResultFileBlob] = []
        for job_id, job_name in junit_jobs(jobs):
            try:
                archive = self._download(project.jobs.get(job_id, lazy=True))
                blobs.extend(
                    xml_files(archive, job_name=job_name, max_bytes=self._max_artifact_bytes)
                )
            except TooLarge as exc:
                log.warning("skipped a JUnit artifact: %s", exc, extra={"repository": repository})
            except gitlab.exceptions.GitlabGetError as exc:
                if not is_status(exc, 404):  # 404: expired or erased meanwhile
                    raise
        return tuple(blobs)

    def _download(self, job: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in job.artifacts(iterator=True):
            size += len(chunk)
            if size > self._max_artifact_bytes:
                raise TooLarge(
                    f"artifacts of job {job.id} exceed {self._max_artifact_bytes:,} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    # -- the one call wrapper ---------------------------------------------------------
    async def _call(self, action: str, op: Callable[[], T], *, forbidden: str | None = None) -> T:
        """Run ``op`` in a bounded worker thread; failures leave as typed errors."""
        return await run_call(self._shared, self._org, action, op, forbidden=forbidden)


async def run_call(
    shared: GitlabShared,
    org: str,
    action: str,
    op: Callable[[], T],
    *,
    forbidden: str | None = None,
) -> T:
    """Run a blocking python-gitlab ``op`` in a bounded worker thread; its failures leave as
    typed errors (``providers.gitlab.errors``) naming ``action`` and the organisation, and
    ``forbidden`` (what a 403 means here) when GitLab refuses it."""
    try:
        return await anyio.to_thread.run_sync(op, limiter=shared.limiter)
    except (
        gitlab.exceptions.GitlabError,
        requests.RequestException,
        RateLimitResponse,
        RetryLater,
    ) as exc:
        raise translate_error(
            exc, now=shared.now(), action=action, org=org, forbidden=forbidden
        ) from exc
