"""Azure DevOps adapter on the azure-devops SDK: iteration-bound PR statuses, commit statuses,
one PR thread per (PR, suite), the ``.aac.yml`` read and the Test Results API.

The SDK is synchronous and finds every route with ``OPTIONS {org}/_apis`` first, so its clients
are built once per (organisation URL, PAT) in ``AzureShared`` and every call runs in a bounded
worker thread (``anyio.to_thread.run_sync``), never on the event loop. Every call goes through
``AzureDevOpsProvider._call``: typed errors (``providers.azure_devops.errors``), bounded retries
of transient ones, rate limits raised with their reset time, never slept on.

``ctx.repository`` is ``"<project>/<repository>"``; the organisation (or Azure DevOps Server
collection) URL comes from the constructor.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
from azure.devops import _file_cache
from azure.devops.v7_1.build.build_client import BuildClient
from azure.devops.v7_1.build.models import Build, DefinitionReference, UpdateStageParameters
from azure.devops.v7_1.git.git_client import GitClient
from azure.devops.v7_1.git.models import (
    Comment,
    GitPullRequestCommentThread,
    GitPullRequestStatus,
    GitStatus,
    GitStatusContext,
    GitVersionDescriptor,
)
from azure.devops.v7_1.identity.identity_client import IdentityClient
from azure.devops.v7_1.location.location_client import LocationClient
from azure.devops.v7_1.security.security_client import SecurityClient
from azure.devops.v7_1.test.test_client import TestClient
from msrest.authentication import BasicAuthentication

from providers.azure_devops.errors import (
    AzureHttpError,
    is_status,
    raise_for_response,
    translate_error,
)
from providers.azure_devops.results import fetch_build_cases
from providers.base import (
    AZURE_LIMITS,
    ArtifactFilter,
    Capabilities,
    CommentBody,
    CommitStatus,
    Conclusion,
    PipelineResults,
    PlatformLimits,
    ProviderError,
    PublishResult,
    StatusState,
    Transient,
    clip,
    comment_within_limit,
    refusal_reply,
)
from providers.context import CiContext
from providers.events import PipelineFinished

T = TypeVar("T")
C = TypeVar("C")
STATUS_GENRE = "aac"
# The thread property that marks our report thread for one suite (the fallback finder).
THREAD_PROPERTY = "aac.report.suite"
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_MAX_THREADS = 8
_SHA = re.compile(r"[0-9a-fA-F]{40}")


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------
# Process-wide shared state: SDK clients and the worker-thread limiter
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Identity:
    """Who the PAT acts as (``connectionData.authenticatedUser``)."""

    id: str
    login: str  # the account (user principal name) service hooks show as ``uniqueName``
    display_name: str


@dataclass(slots=True)
class AzureClients:
    """The SDK clients for one (organisation URL, PAT); SDK objects never leave this module."""

    git: Any
    test: Any
    location: Any
    build: Any
    security: Any
    credentials: Any  # for the clients built later, on the URL an area answers from
    identity: Identity | None = None
    identities: Any = None  # the Identities (IMS) client, on its area's URL (looked up once)


def _memory_only_sdk_caches() -> None:
    """Keep the SDK's route and resource-area caches in memory.

    By default it persists every ``OPTIONS`` answer for 12 hours under ``~/.azure-devops``,
    shared by every process on the host: stale after a Server upgrade, and a write into the
    service account's home on every first call. ``Client._locations_cache`` (in memory, per URL)
    still saves the discovery round trip after the first call.
    """
    for cache in (_file_cache.OPTIONS_CACHE, _file_cache.RESOURCE_CACHE):
        cache.file_name = ""
        cache.data = {}
        cache.initial_load_occurred = True


class AzureShared:
    """State one process shares across all Azure DevOps jobs. Create one at start-up.

    Clients are keyed by (organisation URL, a hash of the PAT), so two organisations or two
    tokens never share a session; the PAT itself is kept only inside the SDK's credentials.
    """

    def __init__(
        self,
        *,
        max_threads: int = DEFAULT_MAX_THREADS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        _memory_only_sdk_caches()
        self.now = now
        self.sleep = sleep
        self.timeout_seconds = timeout_seconds
        self._max_threads = max_threads
        self._limiter: anyio.CapacityLimiter | None = None
        self._clients: dict[tuple[str, str], AzureClients] = {}
        self._lock = threading.Lock()

    def clients(self, base_url: str, token: str) -> AzureClients:
        """The clients for this organisation and PAT, built on first use (no I/O here)."""
        key = (base_url.rstrip("/").lower(), hashlib.sha256(token.encode()).hexdigest()[:16])
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                creds = BasicAuthentication("", token)
                url = base_url.rstrip("/")
                found = AzureClients(
                    git=self._configure(GitClient(url, creds)),
                    test=self._configure(TestClient(url, creds)),
                    location=self._configure(LocationClient(url, creds)),
                    build=self._configure(BuildClient(url, creds)),
                    security=self._configure(SecurityClient(url, creds)),
                    credentials=creds,
                )
                self._clients[key] = found
            return found

    def sdk_client(self, client_class: Callable[[str, Any], C], base_url: str, token: str) -> C:
        """Another SDK client (service hooks, core) for this organisation and PAT, configured
        as the provider's are: our timeout, no urllib3 retries, errors raised with status."""
        configured: C = self._configure(
            client_class(base_url.rstrip("/"), BasicAuthentication("", token))
        )
        return configured

    async def run(self, fn: Callable[[], T]) -> T:
        """Run a blocking SDK call in a worker thread, at most ``max_threads`` at once."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._max_threads)
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    def configure(self, client: Any) -> Any:
        """A client built after start-up, set up as the others are."""
        return self._configure(client)

    def _configure(self, client: Any) -> Any:
        client.config.connection.timeout = self.timeout_seconds
        # Retries are ours (the whole idempotent operation, with its lookups), not urllib3's:
        # a blind re-POST could duplicate a thread, and urllib3 would sleep a whole Retry-After.
        retry = client.config.retry_policy
        retry.retries = 0
        retry.policy.status_forcelist = frozenset()
        retry.policy.raise_on_status = False
        retry.policy.respect_retry_after_header = False
        client.config.hooks.append(raise_for_response)
        return client


# ---------------------------------------------------------------------------------------
# Payloads: pure functions from our types to Azure's
# ---------------------------------------------------------------------------------------
_CONCLUDED: dict[Conclusion | None, str] = {
    Conclusion.SUCCESS: "succeeded",
    Conclusion.FAILURE: "failed",
    Conclusion.ACTION_REQUIRED: "failed",
    Conclusion.NEUTRAL: "notApplicable",
    Conclusion.SKIPPED: "notApplicable",
    Conclusion.TIMED_OUT: "error",
    Conclusion.CANCELLED: "error",
    None: "error",
}


def status_state(status: CommitStatus) -> str:
    """Azure's ``GitStatusState`` for our lifecycle: pending until completed, then by outcome."""
    if status.state is not StatusState.COMPLETED:
        return "pending"
    return _CONCLUDED.get(status.conclusion, "error")


def split_repository(repository: str) -> tuple[str, str]:
    """``"project/repo"`` -> ``("project", "repo")``."""
    project, sep, repo = repository.partition("/")
    if not sep or not project or not repo or "/" in repo:
        raise ProviderError(f"not an Azure DevOps repository (project/repository): {repository!r}")
    return project, repo


def thread_suite(thread: Any) -> str | None:
    """The suite a thread's ``aac.report.suite`` property names, if it has one."""
    properties = thread.properties or {}
    value = properties.get(THREAD_PROPERTY) if isinstance(properties, dict) else None
    if isinstance(value, dict):
        value = value.get("$value", value.get("value"))
    return str(value) if value is not None else None


def _previous_ids(previous: PublishResult | None, kind: str) -> dict[str, str]:
    if previous is None or previous.kind != kind:
        return {}
    return previous.ids


# Git Repositories' security namespace and its Contribute bit (GenericContribute): who may
# push to a repository is who may ask the bot to re-run or re-analyse on it.
GIT_SECURITY_NAMESPACE = "2e9eb7ed-3c0a-47d4-87c1-0ffdd275fd87"
GENERIC_CONTRIBUTE = 4
IDENTITY_AREA = "8a3d49b8-91f0-46ef-b33d-dda338c25db3"  # IMS: vssps.dev.azure.com on Services
_BUILD_RESULTS = {
    "succeeded": "success",
    "partiallysucceeded": "failure",
    "failed": "failure",
    "canceled": "cancelled",
}
_PULL_REF = re.compile(r"^refs/pull/(\d+)/merge$")
# Stage results worth a retry: what GitHub's "re-run failed jobs" and GitLab's retry take up.
_RETRIED_RESULTS = frozenset({"failed", "canceled"})


@dataclass(frozen=True, slots=True)
class BuildFacts:
    """What the Build API says about a finished run (the part a service hook leaves out)."""

    repository: str
    sha: str
    ref: str | None
    number: int | None
    base_ref: str | None
    name: str
    url: str | None
    conclusion: str | None


def _branch(ref: object) -> str:
    return str(ref or "").removeprefix("refs/heads/")


def pull_request_number(trigger_info: dict[str, Any], source_branch: str) -> int | None:
    """The PR a build ran for: ``triggerInfo["pr.number"]``, else ``refs/pull/<n>/merge``."""
    value = str(trigger_info.get("pr.number") or "")
    if value.isdigit():
        return int(value)
    match = _PULL_REF.match(source_branch)
    return int(match.group(1)) if match else None


def refusal_comment(user: str, command: str) -> str:
    """The reply to a refused ``/aac <command>`` from ``user`` (an identity id: Azure renders
    ``@<id>`` as a mention of that person)."""
    return refusal_reply(
        f"@<{user}>", "people who may contribute to this repository", "pull request", command
    )


def stages_to_retry(records: list[Any]) -> list[str]:
    """The ref names of a build's stages that ended failed or canceled, in timeline order."""
    stages = [r for r in records if str(r.type or "") == "Stage" and r.identifier]
    stages.sort(key=lambda r: r.order or 0)
    return [str(r.identifier) for r in stages if str(r.result or "") in _RETRIED_RESULTS]


def replace_event(event: PipelineFinished, facts: BuildFacts) -> PipelineFinished:
    """The event completed with the build's facts (the payload's own values win when set)."""
    return replace(
        event,
        repository=facts.repository,
        sha=facts.sha or event.sha,
        ref=facts.ref or event.ref,
        number=facts.number,
        base_ref=facts.base_ref,
        name=event.name or facts.name,
        url=event.url or facts.url,
        conclusion=facts.conclusion or event.conclusion,
    )


# ---------------------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------------------
class AzureDevOpsProvider:
    """``CiProvider`` for Azure DevOps Services (``https://dev.azure.com/<org>``) and Server
    (``https://host/<collection>``)."""

    name: str = "azure"
    limits: PlatformLimits = AZURE_LIMITS
    capabilities: Capabilities = Capabilities(pr_status=True, commit_status=True, comments=True)

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        org: str,
        shared: AzureShared,
        close_threads: bool = True,
        max_attempts: int = 3,
        backoff_seconds: float = 0.5,
        results_page_size: int = 1000,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._org = org
        self._shared = shared
        self._clients = shared.clients(self._base_url, token)
        self._close_threads = close_threads
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff_seconds
        self._page_size = results_page_size

    # -- the protocol -----------------------------------------------------------------
    async def update_commit_status(
        self, ctx: CiContext, status: CommitStatus, *, previous: PublishResult | None = None
    ) -> PublishResult:
        """A PR status bound to the head commit's iteration, or a commit status outside a PR."""
        project, repo = split_repository(ctx.repository)
        state = status_state(status)
        description = clip(status.description, self.limits.status_description_chars)
        context = GitStatusContext(genre=STATUS_GENRE, name=ctx.suite)
        if ctx.pr is None:
            body = GitStatus(
                state=state,
                description=description,
                context=context,
                target_url=status.details_url,
            )
            created = await self._call(
                "create commit status",
                partial(self._clients.git.create_commit_status, body, ctx.sha, repo, project),
            )
            return PublishResult(
                attempted=True,
                succeeded=True,
                kind="commit_status",
                ids={"status_id": str(created.id), "genre": STATUS_GENRE, "name": ctx.suite},
                url=status.details_url,
            )
        known = _previous_ids(previous, "pr_status")
        known_iteration = known.get("iteration_id") if known.get("sha") == ctx.sha else None
        pr = ctx.pr
        iteration_id, created = await self._call(
            "create PR status",
            partial(
                self._post_pr_status,
                project=project,
                repo=repo,
                pr=pr,
                sha=ctx.sha,
                known_iteration=known_iteration,
                state=state,
                description=description,
                context=context,
                target_url=status.details_url,
            ),
        )
        ids = {"status_id": str(created.id), "genre": STATUS_GENRE, "name": ctx.suite}
        ids["sha"] = ctx.sha
        if iteration_id is not None:
            ids["iteration_id"] = str(iteration_id)
        return PublishResult(
            attempted=True, succeeded=True, kind="pr_status", ids=ids, url=status.details_url
        )

    async def post_comment_to_pr(
        self, ctx: CiContext, message: CommentBody, *, previous: PublishResult | None = None
    ) -> PublishResult:
        """Edit in place, or create, the first comment of the one thread for (PR, suite)."""
        if ctx.pr is None:
            return PublishResult(
                attempted=False, succeeded=False, kind="comment", reason="no pull request"
            )
        body = comment_within_limit(message, self.limits, noun="comment", platform="Azure DevOps")
        project, repo = split_repository(ctx.repository)
        identity = await self.identity()
        known = _previous_ids(previous, "comment")
        if known.get("author") not in (None, identity.id):
            known = {}  # written as another identity: not ours to edit; the finder decides
        thread_id, comment_id = await self._call(
            "publish PR thread",
            partial(
                self._upsert_thread,
                project=project,
                repo=repo,
                pr=ctx.pr,
                body=body,
                suite=message.suite,
                author=identity.id,
                known=known,
            ),
        )
        return PublishResult(
            attempted=True,
            succeeded=True,
            kind="comment",
            ids={"thread_id": str(thread_id), "comment_id": str(comment_id), "author": identity.id},
            url=(
                f"{self._base_url}/{quote(project)}/_git/{quote(repo)}/pullrequest/{ctx.pr}"
                f"?discussionId={thread_id}"
            ),
        )

    # -- identity ---------------------------------------------------------------------
    async def identity(self) -> Identity:
        """Who the PAT acts as, asked once per (organisation, PAT) and remembered."""
        if self._clients.identity is None:
            self._clients.identity = await self._call("read connection data", self._fetch_identity)
        return self._clients.identity

    async def bot_login(self) -> str:
        """The account our threads are authored by, as service hooks show it (``uniqueName``)."""
        return (await self.identity()).login

    def _fetch_identity(self) -> Identity:
        data = self._clients.location.get_connection_data()
        user = data.authenticated_user
        if user is None or not user.id:
            raise ProviderError(f"Azure DevOps organisation {self._org}: no authenticated user")
        account = (user.properties or {}).get("Account") or {}
        login = account.get("$value") if isinstance(account, dict) else None
        name = str(user.provider_display_name or user.custom_display_name or user.id)
        return Identity(id=str(user.id), login=str(login or name), display_name=name)

    # -- statuses ---------------------------------------------------------------------
    def _post_pr_status(
        self,
        *,
        project: str,
        repo: str,
        pr: int,
        sha: str,
        known_iteration: str | None,
        state: str,
        description: str,
        context: Any,
        target_url: str | None,
    ) -> tuple[int | None, Any]:
        git = self._clients.git
        iteration_id = int(known_iteration) if known_iteration else None
        if iteration_id is None:
            iteration_id = self._iteration_of(project, repo, pr, sha)
        body = GitPullRequestStatus(
            state=state,
            description=description,
            context=context,
            target_url=target_url,
            iteration_id=iteration_id,
        )
        return iteration_id, git.create_pull_request_status(body, repo, pr, project=project)

    def _iteration_of(self, project: str, repo: str, pr: int, sha: str) -> int | None:
        """The newest iteration whose source commit is ``sha``; None when no iteration has it
        (the status then stays on the PR, not on a wrong iteration)."""
        iterations = self._clients.git.get_pull_request_iterations(repo, pr, project=project)
        for iteration in reversed(iterations or []):
            commit = iteration.source_ref_commit
            if commit is not None and str(commit.commit_id or "").lower() == sha.lower():
                return int(iteration.id)
        return None

    # -- threads ----------------------------------------------------------------------
    def _upsert_thread(
        self,
        *,
        project: str,
        repo: str,
        pr: int,
        body: str,
        suite: str,
        author: str,
        known: dict[str, str],
    ) -> tuple[int, int]:
        """Edit the known comment, else our marked thread's first comment, else create a
        thread. Safe to repeat: it looks before it creates."""
        git = self._clients.git
        if known.get("thread_id") and known.get("comment_id"):
            thread_id, comment_id = int(known["thread_id"]), int(known["comment_id"])
            try:
                edited = git.update_comment(
                    Comment(content=body), repo, pr, thread_id, comment_id, project=project
                )
            except AzureHttpError as exc:
                if not is_status(exc, 404):  # deleted by someone: find or recreate
                    raise
            else:
                if not edited.is_deleted:
                    return thread_id, comment_id
        found = self._find_thread(project, repo, pr, suite, author)
        if found is not None:
            thread, comment = found
            if comment.content != body:
                git.update_comment(
                    Comment(content=body), repo, pr, thread.id, comment.id, project=project
                )
            return int(thread.id), int(comment.id)
        thread = GitPullRequestCommentThread(
            comments=[Comment(parent_comment_id=0, content=body, comment_type="text")],
            status="closed" if self._close_threads else "active",
            properties={THREAD_PROPERTY: {"type": "System.String", "value": suite}},
        )
        created = git.create_thread(thread, repo, pr, project=project)
        return int(created.id), int(created.comments[0].id)

    def _find_thread(
        self, project: str, repo: str, pr: int, suite: str, author: str
    ) -> tuple[Any, Any] | None:
        """Our live thread for ``suite``: marked by the property and started by ``author``."""
        for thread in self._clients.git.get_threads(repo, pr, project=project) or []:
            if thread.is_deleted or thread_suite(thread) != suite or not thread.comments:
                continue
            first = thread.comments[0]
            if first.is_deleted or first.author is None or str(first.author.id) != author:
                continue
            return thread, first
        return None

    async def answer_command(self, ctx: CiContext, user: str, message: str) -> None:
        """Reply to an ``/aac`` command with a new thread on the pull request (``user`` is an
        identity id, which a comment cannot mention by name: the reply stands alone)."""
        await self._reply_thread(ctx, message, "reply to an /aac command")

    # -- who may run /aac commands -----------------------------------------------------
    async def may_run_commands(self, repository: str, user: str) -> bool:
        """True when ``user`` (an identity id, as a comment's author carries it) is allowed
        Contribute on the repository: its effective Git permissions, groups included."""
        project, repo = split_repository(repository)
        return await self._call(
            "check Contribute permission", partial(self._may_contribute, project, repo, user)
        )

    def _may_contribute(self, project: str, repo: str, user: str) -> bool:
        found = self._clients.git.get_repository(repo, project=project)
        identities = self._identity_client().read_identities(identity_ids=user) or []
        descriptor = next((i.descriptor for i in identities if i.descriptor), None)
        if descriptor is None or found.project is None:
            return False
        acls = self._clients.security.query_access_control_lists(
            GIT_SECURITY_NAMESPACE,
            token=f"repoV2/{found.project.id}/{found.id}",
            descriptors=descriptor,
            include_extended_info=True,
        )
        for acl in acls or []:
            for ace in (acl.aces_dictionary or {}).values():
                info = ace.extended_info
                allowed = info.effective_allow if info is not None else ace.allow
                if int(allowed or 0) & GENERIC_CONTRIBUTE:
                    return True
        return False

    def _identity_client(self) -> Any:
        """The Identities client on the URL its area answers from (Services: the org's vssps
        host; Server: the collection itself), asked once per organisation."""
        clients = self._clients
        if clients.identities is None:
            area = clients.location.get_resource_area(IDENTITY_AREA)
            url = str(getattr(area, "location_url", "") or self._base_url).rstrip("/")
            clients.identities = self._shared.configure(IdentityClient(url, clients.credentials))
        return clients.identities

    # -- repository reads and results -------------------------------------------------
    def file_url(self, repository: str, path: str, ref: str) -> str:
        """Where a person views ``path`` at ``ref`` in the browser."""
        project, repo = split_repository(repository)
        version = ("GC" if _SHA.fullmatch(ref) else "GB") + ref
        return (
            f"{self._base_url}/{quote(project)}/_git/{quote(repo)}"
            f"?path={quote('/' + path.lstrip('/'))}&version={quote(version)}"
        )

    async def get_file(self, repository: str, path: str, ref: str) -> bytes | None:
        """A file's bytes at ``ref`` (commit or branch) through the Git items API."""
        project, repo = split_repository(repository)
        descriptor = GitVersionDescriptor(
            version=ref, version_type="commit" if _SHA.fullmatch(ref) else "branch"
        )

        def fetch() -> bytes | None:
            try:
                chunks = self._clients.git.get_item_content(
                    repo, path, project=project, version_descriptor=descriptor, download=True
                )
                return b"".join(chunks)
            except AzureHttpError as exc:
                if is_status(exc, 404):
                    return None
                raise

        return await self._call(f"read {path}", fetch)

    async def pipeline_results(
        self, repository: str, pipeline_id: str, wanted: ArtifactFilter | None = None
    ) -> PipelineResults:
        """The test results a build published (``PublishTestResults@2``), from the Test
        Results API: the build's test runs, then each run's results, all pages; a test a
        retried job ran again counts once, with its latest attempt's result. (Artifacts are
        not read: the published results are the pipeline's own report.)"""
        project, _ = split_repository(repository)
        build_id = int(pipeline_id)
        cases = await self._call(
            "read test results",
            partial(fetch_build_cases, self._clients.test, project, build_id, self._page_size),
        )
        return PipelineResults(cases=cases, origin="test_results")

    async def resolve_pipeline(self, event: PipelineFinished) -> PipelineFinished | None:
        """Service hooks name a run, not its repository or commit: read them from the Build
        API (and, for a pull-request build, the PR's source commit). None for a run that did
        not build an Azure Repos repository (its results belong to another SCM)."""
        project = event.project or split_repository(event.repository)[0]
        build_id = int(event.pipeline_id)
        found = await self._call("read build", partial(self._read_build, project, build_id))
        if found is None:
            return None
        return replace_event(event, found)

    def _read_build(self, project: str, build_id: int) -> BuildFacts | None:
        build = self._clients.build.get_build(project, build_id)
        repo = build.repository
        if repo is None or str(repo.type or "").lower() != "tfsgit" or build.project is None:
            return None
        repository = f"{build.project.name}/{repo.name}"
        trigger = dict(build.trigger_info or {})
        number = pull_request_number(trigger, str(build.source_branch or ""))
        sha = str(trigger.get("pr.sourceSha") or "")
        ref = _branch(trigger.get("pr.sourceBranch") or build.source_branch)
        base_ref = None
        if number is not None:
            pr = self._clients.git.get_pull_request(repo.name, number, project=build.project.name)
            if not sha and pr.last_merge_source_commit is not None:
                sha = str(pr.last_merge_source_commit.commit_id or "")
            ref = _branch(pr.source_ref_name) or ref
            base_ref = _branch(pr.target_ref_name) or None
        links = getattr(build, "_links", None)
        web = links.additional_properties.get("web", {}).get("href") if links else None
        return BuildFacts(
            repository=repository,
            sha=sha or str(build.source_version or ""),
            ref=ref or None,
            number=number,
            base_ref=base_ref,
            name=str((build.definition.name if build.definition else "") or ""),
            url=str(web) if web else None,
            conclusion=_BUILD_RESULTS.get(str(build.result or "").lower()),
        )

    # -- /aac commands: re-runs and refusals -------------------------------------------
    async def rerun_pipeline(self, repository: str, pipeline_id: str) -> bool:
        """Re-run build ``pipeline_id``: retry its failed and canceled stages (their failed
        jobs only; in place), or, when it has none (a classic pipeline, or nothing failed),
        queue a new build of its definition at the same branch and commit (not in place: a new
        build id). A build still running is left alone: it was re-run in place already."""
        project, _ = split_repository(repository)
        return await self._call(
            f"re-run build {pipeline_id}", partial(self._rerun_build, project, int(pipeline_id))
        )

    def _rerun_build(self, project: str, build_id: int) -> bool:
        build_client = self._clients.build
        build = build_client.get_build(project, build_id)
        if str(build.status or "").lower() != "completed":
            return True
        timeline = build_client.get_build_timeline(project, build_id)
        stages = stages_to_retry(list(timeline.records or [])) if timeline is not None else []
        retry = UpdateStageParameters(state="retry", force_retry_all_jobs=False)
        for stage in stages:
            build_client.update_stage(retry, build_id, stage, project=project)
        if stages:
            return True
        if build.definition is None:
            raise ProviderError(f"Azure DevOps build {build_id} names no pipeline definition")
        again = Build(
            definition=DefinitionReference(id=build.definition.id),
            source_branch=build.source_branch,
            source_version=build.source_version,
        )
        build_client.queue_build(again, project)
        return False

    async def refuse_command(self, ctx: CiContext, user: str, command: str) -> None:
        """Tell ``user`` on the PR, in a thread of its own, that ``/aac <command>`` needs leave
        to contribute to the repository."""
        reply = refusal_comment(user, command)
        await self._reply_thread(ctx, reply, "reply to a refused command")

    async def _reply_thread(self, ctx: CiContext, content: str, action: str) -> None:
        """A new thread of its own on the PR, closed as the report threads are (an answer never
        blocks a comment policy), sent once: a repeated reply is noise, a lost one a missed hint."""
        if ctx.pr is None:
            return
        project, repo = split_repository(ctx.repository)
        thread = GitPullRequestCommentThread(
            comments=[Comment(parent_comment_id=0, content=content, comment_type="text")],
            status="closed" if self._close_threads else "active",
        )
        create = partial(self._clients.git.create_thread, thread, repo, ctx.pr, project=project)
        await self._call(action, create, attempts=1)

    # -- the one call wrapper ---------------------------------------------------------
    async def _call(self, action: str, op: Callable[[], T], *, attempts: int | None = None) -> T:
        """Run ``op`` in a worker thread: typed errors, bounded retries of transient ones
        (at most ``attempts`` tries, else the provider's)."""
        limit = attempts or self._max_attempts
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._shared.run(op)
            except Exception as exc:
                cause: BaseException = exc
                error = translate_error(exc, org=self._org, now=self._shared.now(), action=action)
            if isinstance(error, Transient) and attempt < limit:
                await self._shared.sleep(self._backoff * 2 ** (attempt - 1))
                continue
            if error is cause:
                raise error
            raise error from cause
