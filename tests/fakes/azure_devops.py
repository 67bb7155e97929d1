"""A fake Azure DevOps REST API on 127.0.0.1 for driving the real azure-devops SDK in tests.

The SDK finds every route with ``OPTIONS {org}/_apis`` and refuses to call a location id it was
not told about, so the fake answers discovery as the real service does: each location id, its
area, resource name, route template and versions are *derived* from the SDK's own client modules
(``location_id=`` of each method) and the official REST descriptions in
``../shared/specs/azure-devops-7.1/`` (the method's ``x-ms-vss-method`` gives its paths). The same
table routes the fake's requests, so a route the SDK would build but the spec does not have, or
the reverse, fails here as it would there.

Served: connection data, pull requests, iterations, threads and comments (soft-deleted as Azure
does), PR and commit statuses, items, builds (their timelines, stage retries and queueing, with
"Queue builds" checked; a retried stage's record gets a new attempt, its earlier ones in
``previousAttempts``), test runs (``$skip``/``$top``, ``x-ms-continuationtoken`` on the run
query, their ``pipelineReference`` with stage, phase and job attempts only with
``includeRunDetails``) and results, projects by name, and service-hook
subscriptions (the basic-auth password masked when read back, ``Edit subscriptions`` checked).
Faults: 5xx, 429 with Azure's ``Retry-After`` and ``X-RateLimit-*`` throttling headers, 203
with a sign-in page, 401. Request bodies are validated against the spec's schema for the
operation; an invalid body gets Azure's 400 and is recorded in ``validation_errors`` so a
fixture can fail the test.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import azure.devops.v7_1 as sdk_v7_1
import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REPO_ROOT = Path(__file__).resolve().parents[2]


def _specs_dir() -> Path:
    """``shared/specs/azure-devops-7.1`` beside the repository (CI: ``../shared/specs``), or
    beside one of its parents (a git worktree kept one level deeper)."""
    for parent in REPO_ROOT.parents:
        candidate = parent / "shared" / "specs" / "azure-devops-7.1"
        if candidate.is_dir():
            return candidate
    return REPO_ROOT.parent / "shared" / "specs" / "azure-devops-7.1"


SPECS_DIR = _specs_dir()
_SDK_DIR = Path(sdk_v7_1.__file__).parent
# (area, SDK client module, spec file) of the areas the bot calls.
_AREAS = (
    ("git", "git/git_client_base.py", "git.json"),
    ("build", "build/build_client.py", "build.json"),
    ("test", "test/test_client.py", "test.json"),
    ("hooks", "service_hooks/service_hooks_client.py", "serviceHooks.json"),
)
# The Location, Identities (IMS) and Security areas are not among the shipped specs: these are
# their documented routes (the SDK's location ids).
_LOCATION_ROUTES = (
    ("28010c54-d0c0-4c89-a5b0-1c9e188b9fb7", "IMS", "Identities", "_apis/identities/{identityId}"),
    (
        "18a2ad18-7571-46ae-bec7-0c7da1495885",
        "Security",
        "AccessControlLists",
        "_apis/accesscontrollists/{securityNamespaceId}",
    ),
    ("00d9565f-ed9c-4a06-9a50-00e7896ccab4", "Location", "ConnectionData", "_apis/connectionData"),
    (
        "e81700f7-3be2-46de-8624-2eb35882fcaa",
        "Location",
        "ResourceAreas",
        "_apis/resourceAreas/{areaId}",
    ),
    # Core is not among the shipped specs either: its documented GetProject route.
    ("603fe2ac-9723-48b9-88ad-09305aa6c6e1", "core", "Projects", "_apis/projects/{projectId}"),
)
# Service-hook event types by publisher, as Azure DevOps lists them (those the bot uses).
HOOK_EVENTS = {
    "tfs": {
        "git.pullrequest.created",
        "git.pullrequest.updated",
        "git.pullrequest.merged",
        "build.complete",
        "ms.vss-code.git-pullrequest-comment-event",
    },
    "pipelines": {"ms.vss-pipelines.run-state-changed-event"},
}
MASKED = "********"  # how Azure answers with a confidential consumer input
COMMENT_MAX_CHARS = 150_000
SIGN_IN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head>"
    b"<body><p>Sign in to your account</p></body></html>"
)
FaultKind = Literal["server_error", "throttled", "sign_in_page", "unauthorized"]


# ---------------------------------------------------------------------------------------
# Resource locations, derived from the SDK and the specs
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Location:
    """One ``ApiResourceLocation`` as ``OPTIONS /_apis`` returns it."""

    id: str
    area: str
    resource_name: str
    route_template: str  # collection-relative, e.g. "{project}/_apis/git/repositories/..."
    resource_version: int
    methods: tuple[str, ...]  # the ``x-ms-vss-method`` names served here

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "area": self.area,
            "resourceName": self.resource_name,
            "routeTemplate": self.route_template,
            "resourceVersion": self.resource_version,
            "minVersion": 1.0,
            "maxVersion": 7.1,
            "releasedVersion": "0.0",
        }


_METHOD = re.compile(r"    def (\w+)\(self.*?(?=\n    def |\Z)", re.S)
_LOCATION = re.compile(r"location_id='([0-9a-f-]+)',\s*version='[\d.]+-preview\.(\d+)'")


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def read_spec(name: str) -> dict[str, Any]:
    """One official REST description (the files start with a byte-order mark)."""
    data: dict[str, Any] = json.loads((SPECS_DIR / name).read_text(encoding="utf-8-sig"))
    return data


@cache
def spec_operations() -> dict[tuple[str, str], tuple[str, dict[str, Any], str]]:
    """(``x-ms-vss-method``, HTTP verb) -> (path, operation, spec file)."""
    found: dict[tuple[str, str], tuple[str, dict[str, Any], str]] = {}
    for _, _, spec_name in _AREAS:
        spec = read_spec(spec_name)
        for path, verbs in [*spec["paths"].items(), *spec.get("x-ms-paths", {}).items()]:
            for verb, op in verbs.items():
                found.setdefault(
                    (op.get("x-ms-vss-method", ""), verb.upper()), (path, op, spec_name)
                )
    return found


@cache
def resource_locations() -> tuple[Location, ...]:
    """Every location the SDK's git, build and test clients call, with its route template."""
    operations = spec_operations()
    by_method: dict[str, list[str]] = {}
    for (method, _), (path, _, _) in operations.items():
        by_method.setdefault(method, []).append(path)
    locations = [
        Location(id_, area, resource, template, 1, ())
        for id_, area, resource, template in _LOCATION_ROUTES
    ]
    for area, module, _ in _AREAS:
        grouped: dict[str, tuple[list[str], int]] = {}
        for match in _METHOD.finditer((_SDK_DIR / module).read_text(encoding="utf-8")):
            found = _LOCATION.search(match.group(0))
            if found is None:
                continue
            methods, version = grouped.setdefault(found.group(1), ([], 1))
            methods.append(_camel(match.group(1)))
            grouped[found.group(1)] = (methods, max(version, int(found.group(2))))
        for location_id, (methods, version) in grouped.items():
            paths = [p.split("?")[0] for m in methods for p in by_method.get(m, [])]
            if not paths:
                continue  # content/zip variants of a method that shares its location
            longest = max(paths, key=lambda p: p.count("/"))
            template = longest.removeprefix("/{organization}/")
            resource = next(
                op.get("x-ms-vss-resource", "")
                for (m, _), (_, op, _) in operations.items()
                if m in methods
            )
            locations.append(
                Location(location_id, area, resource, template, version, tuple(methods))
            )
    return tuple(locations)


def _template_regex(template: str) -> re.Pattern[str]:
    """A route template as a regex; trailing ``{param}`` segments are optional, as in Azure."""
    parts = template.split("/")
    regex = ""
    optional = 0
    for index, part in enumerate(parts):
        name = re.fullmatch(r"\{\*?(\w+)\}", part)
        segment = f"(?P<{name.group(1)}>[^/]+)" if name else re.escape(part)
        if name and all(re.fullmatch(r"\{\*?\w+\}", p) for p in parts[index:]) and index > 0:
            regex += f"(?:/{segment}"
            optional += 1
        else:
            regex += ("/" if index else "") + segment
    return re.compile("^" + regex + ")?" * optional + "$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------
# Request body schemas from the specs
# ---------------------------------------------------------------------------------------
@cache
def _spec_definitions(spec_name: str) -> dict[str, Any]:
    definitions: dict[str, Any] = read_spec(spec_name)["definitions"]
    return definitions


def body_schema(method: str, verb: str) -> tuple[dict[str, Any], str] | None:
    """The JSON schema of an operation's body (with the spec's definitions), and its spec."""
    entry = spec_operations().get((method, verb))
    if entry is None:
        return None
    _, op, spec_name = entry
    for parameter in op.get("parameters", []):
        if parameter.get("in") == "body":
            schema = dict(parameter["schema"])
            schema["definitions"] = _spec_definitions(spec_name)
            return schema, spec_name
    return None


def _known_properties(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> set[str]:
    """Every property name an object schema declares, through ``$ref`` and ``allOf``."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _known_properties(definitions[ref.rsplit("/", 1)[1]], definitions)
    names = set(schema.get("properties", {}))
    for parent in schema.get("allOf", []):
        names |= _known_properties(parent, definitions)
    return names


# ---------------------------------------------------------------------------------------
# Recorded data
# ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    operation: str = ""  # the ``x-ms-vss-method``, e.g. "CreateThread"


@dataclass(slots=True)
class Fault:
    """Make the next ``times`` requests matching ``method`` and ``operation`` (a regex) fail."""

    kind: FaultKind
    method: str | None = None
    operation: str = ".*"
    times: int = 1
    status: int = 503  # "server_error" only
    retry_after: int | None = 30  # "throttled": Retry-After seconds (None: reset header only)
    reset_in: int = 30  # "throttled": X-RateLimit-Reset = now + this

    def fires(self, method: str, operation: str) -> bool:
        if self.times <= 0 or self.method not in (None, method):
            return False
        if not re.fullmatch(self.operation, operation):
            return False
        self.times -= 1
        return True


@dataclass(slots=True)
class User:
    id: str
    login: str
    display_name: str

    def ref(self) -> dict[str, Any]:
        return {"id": self.id, "displayName": self.display_name, "uniqueName": self.login}


@dataclass(slots=True)
class ThreadComment:
    id: int
    author: User
    content: str
    parent_comment_id: int = 0
    comment_type: str = "text"
    is_deleted: bool = False
    edits: int = 0


@dataclass(slots=True)
class Thread:
    id: int
    pr: int
    status: str
    properties: dict[str, Any]
    comments: list[ThreadComment] = field(default_factory=list)
    is_deleted: bool = False


@dataclass(slots=True)
class PullRequest:
    repo: str  # "project/repository"
    id: int
    iterations: list[str]  # source commit of each iteration, oldest first


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


def wrapped_exception(status: int, message: str, type_key: str) -> _Rejected:
    """Azure's error body (a serialised ``WrappedException``)."""
    return _Rejected(
        _Reply(
            status,
            {
                "$id": "1",
                "innerException": None,
                "message": message,
                "typeName": f"Microsoft.TeamFoundation.Framework.Server.{type_key}",
                "typeKey": type_key,
                "errorCode": 0,
                "eventId": 3000,
            },
        )
    )


@dataclass(slots=True)
class _Call:
    operation: str
    verb: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    user: User
    base_url: str


Handler = Callable[[_Call], _Reply]


# ---------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------
# What a test run list leaves out unless asked for ``includeRunDetails`` ("include all the
# properties of the runs"): the build, release and pipeline the run belongs to.
_RUN_DETAILS = frozenset(
    {"build", "buildConfiguration", "pipelineReference", "release", "runStatistics"}
)


class FakeAzureDevOps:
    """Azure DevOps' REST API for one organisation, in memory, on 127.0.0.1."""

    def __init__(self, *, org: str, pats: Mapping[str, User]) -> None:
        self.org = org
        self._pat_users = dict(pats)
        self._lock = threading.RLock()
        self._locations = resource_locations()
        self._routes = [(loc, _template_regex(loc.route_template)) for loc in self._locations]
        self._handlers: dict[tuple[str, str], Handler] = {
            ("GET", "ConnectionData"): self._connection_data,
            ("GET", "ResourceAreas"): self._resource_area,
            ("GET", "Identities"): self._identities,
            ("GET", "AccessControlLists"): self._access_control_lists,
            ("GET", "GetRepository"): self._get_repository,
            ("GET", "GetPullRequest"): self._get_pull_request,
            ("GET", "GetPullRequestIterations"): self._get_iterations,
            ("POST", "CreateThread"): self._create_thread,
            ("GET", "GetThreads"): self._get_threads,
            ("PATCH", "UpdateThread"): self._update_thread,
            ("PATCH", "UpdateComment"): self._update_comment,
            ("DELETE", "DeleteComment"): self._delete_comment,
            ("POST", "CreatePullRequestStatus"): self._create_pr_status,
            ("GET", "GetPullRequestStatuses"): self._get_pr_statuses,
            ("POST", "CreateCommitStatus"): self._create_commit_status,
            ("GET", "GetStatuses"): self._get_commit_statuses,
            ("GET", "GetItem"): self._get_item,
            ("GET", "GetBuild"): self._get_build,
            ("GET", "GetBuildTimeline"): self._get_build_timeline,
            ("PATCH", "UpdateStage"): self._update_stage,
            ("POST", "QueueBuild"): self._queue_build,
            ("GET", "GetTestRuns"): self._get_test_runs,
            ("GET", "GetTestResults"): self._get_test_results,
            ("GET", "Projects"): self._get_project,
            ("GET", "ListSubscriptions"): self._list_subscriptions,
            ("POST", "CreateSubscription"): self._create_subscription,
            ("GET", "GetSubscription"): self._get_subscription,
            ("PUT", "ReplaceSubscription"): self._replace_subscription,
            ("DELETE", "DeleteSubscription"): self._delete_subscription,
        }
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The organisation URL (``https://dev.azure.com/<org>`` on the real service)."""
        return f"http://127.0.0.1:{self.port}/{self.org}"

    def start(self) -> FakeAzureDevOps:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        methods = ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=methods)])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", http="h11")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake Azure DevOps did not start")
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
            self.pats = dict(self._pat_users)
            self.pull_requests: dict[tuple[str, int], PullRequest] = {}
            self.threads: dict[tuple[str, int], list[Thread]] = {}
            self.pr_statuses: dict[tuple[str, int], list[dict[str, Any]]] = {}
            self.commit_statuses: dict[tuple[str, str], list[dict[str, Any]]] = {}
            self.items: dict[tuple[str, str, str], bytes] = {}
            self.builds: dict[tuple[str, int], dict[str, Any]] = {}
            self.timelines: dict[tuple[str, int], list[dict[str, Any]]] = {}  # stage records
            # What the bot asked of Azure Pipelines: (project, build id, stage) retried, and
            # the builds it queued (as stored).
            self.stage_retries: list[tuple[str, int, str]] = []
            self.queued_builds: list[dict[str, Any]] = []
            self.test_runs: dict[str, list[dict[str, Any]]] = {}  # project -> runs
            self.test_results: dict[int, list[dict[str, Any]]] = {}  # run id -> results
            self.projects: dict[str, dict[str, str]] = {}  # lower-case name -> id, name
            self.subscriptions: dict[str, dict[str, Any]] = {}  # id -> as stored (unmasked)
            # (user id, project id or "*") without the "Edit subscriptions" permission.
            self.hooks_read_only: set[tuple[str, str]] = set()
            # Users allowed Contribute (GenericContribute, bit 4) on every Git repository,
            # through a group such as [Project]\\Contributors.
            self.contributors: set[str] = {u.id for u in self._pat_users.values()}
            # Users allowed "Queue builds" (which retrying a stage needs too).
            self.build_queuers: set[str] = {u.id for u in self._pat_users.values()}
            self._next_id = 1

    # -- test helpers ---------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def add_pull_request(self, repo: str, pr: int, *commits: str) -> None:
        """A PR of ``repo`` ("project/repository") whose iterations have these source commits."""
        with self._lock:
            self.pull_requests[(repo.lower(), pr)] = PullRequest(repo, pr, list(commits))

    def push(self, repo: str, pr: int, commit: str) -> None:
        """A new iteration of a PR (a push to its source branch)."""
        with self._lock:
            self.pull_requests[(repo.lower(), pr)].iterations.append(commit)

    def add_thread(self, repo: str, pr: int, author: User, content: str, **props: str) -> int:
        """A thread someone else (or we, earlier) wrote; ``props`` become its properties."""
        with self._lock:
            thread = Thread(
                self._new_id(),
                pr,
                "active",
                {k: {"$type": "System.String", "$value": v} for k, v in props.items()},
            )
            thread.comments.append(ThreadComment(self._new_id(), author, content))
            self.threads.setdefault((repo.lower(), pr), []).append(thread)
            return thread.id

    def pr_threads(self, repo: str, pr: int) -> list[Thread]:
        with self._lock:
            return [t for t in self.threads.get((repo.lower(), pr), []) if not t.is_deleted]

    def delete_first_comment(self, repo: str, pr: int, thread_id: int) -> None:
        """What a person deleting the report in the web UI does: the comment is soft-deleted."""
        with self._lock:
            for thread in self.threads.get((repo.lower(), pr), []):
                if thread.id == thread_id:
                    thread.comments[0].is_deleted = True
                    thread.comments[0].content = ""

    def add_build(
        self,
        repo: str,
        build_id: int,
        *,
        source_version: str,
        pr: int | None = None,
        result: str = "succeeded",
        definition: str = "widgets-ci",
        repository_type: str = "TfsGit",
        stages: Mapping[str, str] | None = None,
    ) -> None:
        """A finished build of ``repo`` ("project/repository"), as the Build API returns it;
        a PR build runs on ``refs/pull/<pr>/merge`` with the PR in its trigger info. ``stages``
        are its YAML stages (ref name -> result) in order; without any, a classic build's
        timeline (a phase and its job, no stage)."""
        project, _, name = repo.partition("/")
        trigger = {"pr.number": str(pr), "pr.isFork": "False"} if pr is not None else {}
        with self._lock:
            self.timelines[(project.lower(), build_id)] = self._timeline_records(stages, result)
            self.builds[(project.lower(), build_id)] = {
                "id": build_id,
                "buildNumber": f"20240611.{build_id}",
                "status": "completed",
                "result": result,
                "definition": {"id": 17, "name": definition},
                "project": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, project)), "name": project},
                "repository": {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, repo)),
                    "name": name,
                    "type": repository_type,
                },
                "sourceBranch": f"refs/pull/{pr}/merge" if pr is not None else "refs/heads/main",
                "sourceVersion": source_version,
                "triggerInfo": trigger,
                "_links": {
                    "web": {"href": f"{self.url}/{project}/_build/results?buildId={build_id}"}
                },
            }

    @staticmethod
    def _timeline_records(stages: Mapping[str, str] | None, result: str) -> list[dict[str, Any]]:
        if not stages:
            stages_or_phase = [("Phase", "Phase_1", result), ("Job", "Phase_1.__default", result)]
        else:
            stages_or_phase = [("Stage", ref, outcome) for ref, outcome in stages.items()]
        return [
            {
                "id": str(uuid.uuid4()),
                "type": kind,
                "identifier": identifier,
                "name": identifier,
                "order": order,
                "state": "completed",
                "result": outcome,
                "attempt": 1,
            }
            for order, (kind, identifier, outcome) in enumerate(stages_or_phase, start=1)
        ]

    def add_item(self, repo: str, path: str, data: bytes, version: str) -> None:
        with self._lock:
            self.items[(repo.lower(), "/" + path.lstrip("/"), version)] = data

    def add_test_run(
        self,
        project: str,
        build_id: int,
        name: str,
        results: list[dict[str, Any]],
        *,
        stage: str | None = "__default",
        phase: str = "Job",
        job: str = "__default",
        attempt: int | None = None,
    ) -> int:
        """A test run published for a build, with its results (``TestCaseResult`` JSON).

        Its ``pipelineReference`` names the job that published it as the agent's
        ``PublishTestResults`` does: ``stage``, ``phase`` (the YAML job's name) and ``job`` (a
        matrix leg, else ``__default``), at ``attempt`` or else the stage's current attempt in
        the build's timeline (1 when it has none). ``stage=None``: a run created through the
        REST API without one."""
        with self._lock:
            run_id = self._new_id()
            run: dict[str, Any] = {
                "id": run_id,
                "name": name,
                "url": f"{self.url}/{project}/_apis/test/Runs/{run_id}",
                "build": {"id": str(build_id)},
                "buildConfiguration": {
                    "id": build_id,
                    "uri": f"vstfs:///Build/Build/{build_id}",
                },
                "state": "Completed",
                "isAutomated": True,
                "totalTests": len(results),
                "completedDate": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
            if stage is not None:
                if attempt is None:
                    record = self._stage_record((project.lower(), build_id), stage)
                    attempt = record["attempt"] if record is not None else 1
                run["pipelineReference"] = {
                    "pipelineId": build_id,
                    "stageReference": {"stageName": stage, "attempt": attempt},
                    "phaseReference": {"phaseName": phase, "attempt": attempt},
                    "jobReference": {"jobName": job, "attempt": attempt},
                }
            self.test_runs.setdefault(project.lower(), []).append(run)
            self.test_results[run_id] = [
                {"id": 100000 + i, "testRun": {"id": str(run_id)}, **r}
                for i, r in enumerate(results)
            ]
            return run_id

    def finish_stage(self, project: str, build_id: int, stage: str, result: str) -> None:
        """A retried stage's jobs are done: the stage ends with ``result`` and the build
        completes again, failed unless every stage succeeded or was skipped."""
        key = (project.lower(), build_id)
        with self._lock:
            record = self._stage_record(key, stage)
            if record is None:
                raise KeyError(f"build {build_id} has no stage {stage}")
            record.update({"state": "completed", "result": result})
            records = [r for r in self.timelines[key] if r["type"] == "Stage"]
            passed = all(r["result"] in ("succeeded", "skipped") for r in records)
            self.builds[key].update(
                {"status": "completed", "result": "succeeded" if passed else "failed"}
            )

    def _stage_record(self, key: tuple[str, int], stage: str) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in self.timelines.get(key, [])
                if r["type"] == "Stage" and r["identifier"] == stage
            ),
            None,
        )

    def writes(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method not in ("GET", "OPTIONS")]

    def add_project(self, name: str) -> str:
        """A team project; its id (what service-hook publisher inputs name it by)."""
        with self._lock:
            found = self.projects.setdefault(
                name.lower(), {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)), "name": name}
            )
            return found["id"]

    def add_subscription(self, creator: User, **fields: Any) -> str:
        """A subscription made earlier (by the bot, or by hand); fields as the REST API has."""
        with self._lock:
            subscription = self._stored_subscription(dict(fields), creator, str(uuid.uuid4()))
            return str(subscription["id"])

    # -- HTTP -----------------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        base = f"{request.url.scheme}://{request.url.netloc}/{self.org}"
        reply = self._handle(
            request.method,
            "/" + request.path_params["path"],
            dict(request.query_params),
            request.headers,
            raw,
            base,
        )
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

    def _handle(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        raw: bytes,
        base_url: str,
    ) -> _Reply:
        with self._lock:
            record = RecordedRequest(method, path, query, None)
            self.requests.append(record)
            try:
                user = self._authenticate(headers)
                relative = self._relative(path)
                if method == "OPTIONS" and relative.rstrip("/") == "_apis":
                    reply = _Reply(200, self._options())
                else:
                    location, params = self._match(relative)
                    operation = self._operation(location, method, params)
                    record.operation = operation
                    self._apply_faults(method, operation)
                    body = self._parse(raw)
                    record.body = body
                    self._validate(operation, method, body)
                    handler = self._handlers.get((method, operation))
                    if handler is None:
                        raise wrapped_exception(
                            405, f"The fake does not serve {operation}", "NotImplemented"
                        )
                    reply = handler(_Call(operation, method, params, query, body, user, base_url))
            except _Rejected as rejected:
                reply = rejected.reply
            record.status = reply.status
            reply.headers.setdefault("activityid", str(uuid.uuid4()))
            return reply

    def _relative(self, path: str) -> str:
        prefix = f"/{self.org}/"
        if not path.lower().startswith(prefix.lower()):
            raise wrapped_exception(404, "The resource cannot be found.", "HttpException")
        return path[len(prefix) :]

    def _authenticate(self, headers: Mapping[str, str]) -> User:
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        pat = ""
        if scheme.lower() == "basic":
            try:
                pat = base64.b64decode(encoded).decode().partition(":")[2]
            except ValueError:
                pat = ""
        user = self.pats.get(pat)
        if user is not None:
            return user
        if headers.get("x-tfs-fedauthredirect", "").lower() == "suppress":
            raise _Rejected(_Reply(401, raw=b"", headers={"www-authenticate": 'Basic realm=""'}))
        raise _Rejected(_Reply(203, raw=SIGN_IN_PAGE, media_type="text/html; charset=utf-8"))

    def _options(self) -> dict[str, Any]:
        value = [loc.json() for loc in self._locations]
        return {"count": len(value), "value": value}

    def _match(self, relative: str) -> tuple[Location, dict[str, str]]:
        best: tuple[Location, dict[str, str]] | None = None
        for location, pattern in self._routes:
            found = pattern.match(relative)
            if found:
                params = {k: v for k, v in found.groupdict().items() if v is not None}
                # The most specific route wins (most literal segments, then most values).
                if best is None or _specificity(location, params) > _specificity(*best):
                    best = (location, params)
        if best is None:
            raise wrapped_exception(404, f"No route for {relative}", "HttpException")
        return best

    def _operation(self, location: Location, verb: str, params: dict[str, str]) -> str:
        """Which ``x-ms-vss-method`` of the location this (verb, values) is."""
        if not location.methods:  # a hand-written route (Location, core): one operation
            return location.resource_name
        candidates = []
        for method in location.methods:
            entry = spec_operations().get((method, verb))
            if entry is None:
                continue
            names = set(re.findall(r"\{(\w+)\}", entry[0].split("?")[0])) - {"organization"}
            # Path values the spec marks ``x-ms-required: false`` may be left out (a build's
            # timeline without a timeline id), as the route template's optional tail allows.
            optional = {
                p["name"]
                for p in entry[1].get("parameters", [])
                if p.get("in") == "path" and p.get("x-ms-required") is False
            }
            if names - optional <= set(params) | {"project"}:
                candidates.append((len(names), method))
        if not candidates:
            raise wrapped_exception(405, f"{verb} is not allowed here", "HttpMethodNotAllowed")
        wanted = len(set(params) | {"project"})
        candidates.sort(key=lambda c: (c[0] == wanted, c[0]), reverse=True)
        return candidates[0][1]

    def _apply_faults(self, method: str, operation: str) -> None:
        for fault in self.faults:
            if not fault.fires(method, operation):
                continue
            if fault.kind == "server_error":
                raise wrapped_exception(
                    fault.status, "TF400898: An Internal Error Occurred.", "InternalServerException"
                )
            if fault.kind == "sign_in_page":
                raise _Rejected(
                    _Reply(203, raw=SIGN_IN_PAGE, media_type="text/html; charset=utf-8")
                )
            if fault.kind == "unauthorized":
                raise _Rejected(_Reply(401, raw=b""))
            now = int(time.time())
            headers = {
                "x-ratelimit-resource": "ATCPU",
                "x-ratelimit-delay": "12.5",
                "x-ratelimit-limit": "200",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(now + fault.reset_in),
            }
            if fault.retry_after is not None:
                headers["retry-after"] = str(fault.retry_after)
            rejected = wrapped_exception(
                429,
                "TF400733: The request has been canceled: Request was blocked due to exceeding "
                "usage of resource 'ATCPU' in namespace 'User'.",
                "RequestBlockedException",
            )
            rejected.reply.headers.update(headers)
            raise rejected

    @staticmethod
    def _parse(raw: bytes) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise wrapped_exception(
                400, "Value cannot be null.\r\nParameter name: body", "ArgumentNullException"
            ) from None

    def _validate(self, operation: str, verb: str, body: Any) -> None:
        found = body_schema(operation, verb)
        if found is None:
            return
        schema, _ = found
        problems = [
            f"{operation}: {e.json_path}: {e.message}"
            for e in jsonschema.Draft4Validator(schema).iter_errors(body)
        ]
        if isinstance(body, dict):
            known = _known_properties(schema, schema["definitions"])
            problems += [f"{operation}: unknown property {k!r}" for k in body if k not in known]
        if problems:
            self.validation_errors.extend(problems)
            raise wrapped_exception(400, "; ".join(problems)[:500], "InvalidArgumentValueException")

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- handlers -------------------------------------------------------------------------
    def _repo_key(self, call: _Call) -> str:
        return f"{call.params.get('project', '')}/{call.params.get('repositoryId', '')}".lower()

    def _pull_request(self, call: _Call) -> PullRequest:
        found = self.pull_requests.get((self._repo_key(call), int(call.params["pullRequestId"])))
        if found is None:
            raise wrapped_exception(
                404,
                "TF401180: The requested pull request was not found.",
                "GitPullRequestNotFoundException",
            )
        return found

    def _connection_data(self, call: _Call) -> _Reply:
        user = call.user
        return _Reply(
            200,
            {
                "authenticatedUser": {
                    "id": user.id,
                    "descriptor": f"Microsoft.IdentityModel.Claims.ClaimsIdentity;{user.login}",
                    "subjectDescriptor": "aad.ZmFrZQ",
                    "providerDisplayName": user.display_name,
                    "isActive": True,
                    "properties": {"Account": {"$type": "System.String", "$value": user.login}},
                    "resourceVersion": 2,
                    "metaTypeId": 0,
                },
                "authorizedUser": {"id": user.id, "providerDisplayName": user.display_name},
                "instanceId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.org)),
                "deploymentId": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.org)),
                "deploymentType": "hosted",
                "locationServiceData": {"serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7"},
            },
        )

    def _resource_area(self, call: _Call) -> _Reply:
        # Azure DevOps Services answers each area's own host (IMS: vssps.dev.azure.com/<org>);
        # the fake serves every area itself.
        area = call.params.get("areaId", "")
        return _Reply(200, {"id": area, "name": "IMS", "locationUrl": call.base_url + "/"})

    def _user_by_id(self, identity_id: str) -> User | None:
        return next((u for u in self.pats.values() if u.id.lower() == identity_id.lower()), None)

    @staticmethod
    def descriptor(user: User) -> str:
        """The identity descriptor Azure gives a user (what ACLs are keyed by)."""
        return f"Microsoft.IdentityModel.Claims.ClaimsIdentity;{user.login}"

    def _identities(self, call: _Call) -> _Reply:
        wanted = [i for i in call.query.get("identityIds", "").split(",") if i]
        found = [u for u in map(self._user_by_id, wanted) if u is not None]
        value = [
            {
                "id": u.id,
                "descriptor": self.descriptor(u),
                "subjectDescriptor": f"aad.{u.id[:8]}",
                "providerDisplayName": u.display_name,
                "isActive": True,
                "isContainer": False,
            }
            for u in found
        ]
        return _Reply(200, {"count": len(value), "value": value})

    def _access_control_lists(self, call: _Call) -> _Reply:
        token = call.query.get("token", "")
        descriptors = [d for d in call.query.get("descriptors", "").split(",") if d]
        extended = call.query.get("includeExtendedInfo", "").lower() == "true"
        aces = {}
        for descriptor in descriptors:
            user = next((u for u in self.pats.values() if self.descriptor(u) == descriptor), None)
            # Nobody has an explicit entry: what a user may do comes from their groups.
            inherited = 0b1111110 if user is not None and user.id in self.contributors else 0b10
            ace: dict[str, Any] = {"descriptor": descriptor, "allow": 0, "deny": 0}
            if extended:
                ace["extendedInfo"] = {
                    "effectiveAllow": inherited,
                    "effectiveDeny": 0,
                    "inheritedAllow": inherited,
                    "inheritedDeny": 0,
                }
            aces[descriptor] = ace
        acl = {"inheritPermissions": True, "token": token, "acesDictionary": aces}
        return _Reply(200, {"count": 1, "value": [acl]})

    def _get_repository(self, call: _Call) -> _Reply:
        project, repo = call.params.get("project", ""), call.params.get("repositoryId", "")
        key = f"{project}/{repo}".lower()
        if not any(r == key for r, _ in self.pull_requests):
            raise wrapped_exception(
                404,
                f"TF401019: The Git repository with name or identifier {repo} does not exist "
                "or you do not have permissions for the operation you are attempting.",
                "GitRepositoryNotFoundException",
            )
        return _Reply(
            200,
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{project}/{repo}")),
                "name": repo,
                "project": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, project)), "name": project},
            },
        )

    def _get_pull_request(self, call: _Call) -> _Reply:
        pr = self._pull_request(call)
        head = pr.iterations[-1]
        return _Reply(
            200,
            {
                "pullRequestId": pr.id,
                "status": "active",
                "sourceRefName": "refs/heads/feature",
                "targetRefName": "refs/heads/main",
                "lastMergeSourceCommit": {"commitId": head},
            },
        )

    def _get_iterations(self, call: _Call) -> _Reply:
        pr = self._pull_request(call)
        value = [
            {"id": i, "sourceRefCommit": {"commitId": sha}, "reason": "push" if i > 1 else "create"}
            for i, sha in enumerate(pr.iterations, start=1)
        ]
        return _Reply(200, {"count": len(value), "value": value})

    def _thread_json(self, thread: Thread) -> dict[str, Any]:
        return {
            "id": thread.id,
            "status": thread.status,
            "isDeleted": thread.is_deleted,
            "properties": thread.properties,
            "comments": [
                {
                    "id": c.id,
                    "parentCommentId": c.parent_comment_id,
                    "author": c.author.ref(),
                    "content": c.content,
                    "commentType": c.comment_type,
                    "isDeleted": c.is_deleted,
                    "publishedDate": "2024-01-01T00:00:00Z",
                }
                for c in thread.comments
            ],
        }

    def _find_thread(self, call: _Call) -> Thread:
        self._pull_request(call)
        thread_id = int(call.params["threadId"])
        for thread in self.threads.get(
            (self._repo_key(call), int(call.params["pullRequestId"])), []
        ):
            if thread.id == thread_id:
                return thread
        raise wrapped_exception(
            404, f"TF401174: The item {thread_id} could not be found.", "ItemNotFoundException"
        )

    def _check_length(self, content: str) -> None:
        if len(content) > COMMENT_MAX_CHARS:
            raise wrapped_exception(
                400,
                f"The comment content is too long. Maximum length is {COMMENT_MAX_CHARS}.",
                "InvalidArgumentValueException",
            )

    def _create_thread(self, call: _Call) -> _Reply:
        pr = self._pull_request(call)
        comments = call.body.get("comments") or []
        if not comments:
            raise wrapped_exception(
                400, "A thread must contain at least one comment.", "InvalidArgumentValueException"
            )
        properties = {
            key: {"$type": value.get("type", "System.String"), "$value": value.get("value")}
            if isinstance(value, dict)
            else {"$type": "System.String", "$value": value}
            for key, value in (call.body.get("properties") or {}).items()
        }
        thread = Thread(self._new_id(), pr.id, call.body.get("status") or "active", properties)
        for comment in comments:
            self._check_length(comment.get("content") or "")
            thread.comments.append(
                ThreadComment(
                    self._new_id(),
                    call.user,
                    comment.get("content") or "",
                    int(comment.get("parentCommentId") or 0),
                    comment.get("commentType") or "text",
                )
            )
        self.threads.setdefault((self._repo_key(call), pr.id), []).append(thread)
        return _Reply(200, self._thread_json(thread))

    def _get_threads(self, call: _Call) -> _Reply:
        pr = self._pull_request(call)
        value = [self._thread_json(t) for t in self.threads.get((self._repo_key(call), pr.id), [])]
        return _Reply(200, {"count": len(value), "value": value})

    def _update_thread(self, call: _Call) -> _Reply:
        thread = self._find_thread(call)
        if "status" in call.body:
            thread.status = call.body["status"]
        return _Reply(200, self._thread_json(thread))

    def _find_comment(self, call: _Call) -> ThreadComment:
        thread = self._find_thread(call)
        comment_id = int(call.params["commentId"])
        for comment in thread.comments:
            if comment.id == comment_id:
                return comment
        raise wrapped_exception(
            404, f"TF401174: The item {comment_id} could not be found.", "ItemNotFoundException"
        )

    def _update_comment(self, call: _Call) -> _Reply:
        comment = self._find_comment(call)
        if comment.author.id != call.user.id:
            raise wrapped_exception(
                403, "TF401181: You can only edit your own comments.", "UnauthorizedAccessException"
            )
        if comment.is_deleted:
            # Azure keeps a deleted comment as a tombstone and refuses to edit it.
            raise wrapped_exception(
                404, f"TF401174: The item {comment.id} could not be found.", "ItemNotFoundException"
            )
        content = call.body.get("content") or ""
        self._check_length(content)
        comment.content = content
        comment.edits += 1
        thread = self._find_thread(call)
        return _Reply(200, self._thread_json(thread)["comments"][thread.comments.index(comment)])

    def _delete_comment(self, call: _Call) -> _Reply:
        comment = self._find_comment(call)
        comment.is_deleted = True
        comment.content = ""
        return _Reply(200, raw=b"")

    def _status_json(self, body: dict[str, Any], call: _Call, id_: int) -> dict[str, Any]:
        return {
            "id": id_,
            "state": body.get("state", "notSet"),
            "description": body.get("description"),
            "context": body.get("context"),
            "targetUrl": body.get("targetUrl"),
            "iterationId": body.get("iterationId"),
            "createdBy": call.user.ref(),
            "creationDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }

    def _create_pr_status(self, call: _Call) -> _Reply:
        pr = self._pull_request(call)
        iteration = call.body.get("iterationId")
        if iteration is not None and not 1 <= int(iteration) <= len(pr.iterations):
            raise wrapped_exception(
                400, f"TF401347: Invalid iteration id {iteration}.", "InvalidArgumentValueException"
            )
        statuses = self.pr_statuses.setdefault((self._repo_key(call), pr.id), [])
        status = self._status_json(call.body, call, len(statuses) + 1)
        statuses.append(status)
        return _Reply(200, status)

    def _get_pr_statuses(self, call: _Call) -> _Reply:
        pr = self._pull_request(call)
        value = self.pr_statuses.get((self._repo_key(call), pr.id), [])
        return _Reply(200, {"count": len(value), "value": value})

    def _create_commit_status(self, call: _Call) -> _Reply:
        key = (self._repo_key(call), call.params["commitId"].lower())
        statuses = self.commit_statuses.setdefault(key, [])
        status = self._status_json(call.body, call, len(statuses) + 1)
        status.pop("iterationId")
        statuses.append(status)
        return _Reply(201, status)

    def _get_commit_statuses(self, call: _Call) -> _Reply:
        value = self.commit_statuses.get(
            (self._repo_key(call), call.params["commitId"].lower()), []
        )
        return _Reply(200, {"count": len(value), "value": value})

    def _get_item(self, call: _Call) -> _Reply:
        path = "/" + call.query.get("path", "").lstrip("/")
        version = call.query.get("versionDescriptor.version", "main")
        data = self.items.get((self._repo_key(call), path, version))
        if data is None:
            raise wrapped_exception(
                404,
                f"TF401174: The item '{path}' could not be found in the repository at the "
                "version specified.",
                "GitItemNotFoundException",
            )
        return _Reply(200, raw=data, media_type="application/octet-stream")

    def _get_build(self, call: _Call) -> _Reply:
        project = call.params["project"].lower()
        key = (project, int(call.params["buildId"]))
        build = self.builds.get(key) or next(
            (
                b
                for (_, i), b in self.builds.items()
                if i == key[1] and b["project"]["id"] == project
            ),
            None,
        )
        if build is None:
            raise wrapped_exception(
                404, f"The requested build {key[1]} could not be found.", "BuildNotFoundException"
            )
        return _Reply(200, build)

    def _find_build(self, call: _Call) -> dict[str, Any]:
        reply = self._get_build(call)
        build: dict[str, Any] = reply.body
        return build

    def _check_may_queue(self, call: _Call, build: dict[str, Any]) -> None:
        if call.user.id not in self.build_queuers:
            raise wrapped_exception(
                403,
                f"TF215106: Access denied. {call.user.display_name} needs Queue builds "
                f"permissions for build pipeline {build['definition']['name']} in team project "
                f"{build['project']['name']} to perform the action. For more information, "
                "contact the Azure DevOps Server administrator.",
                "AccessDeniedException",
            )

    def _get_build_timeline(self, call: _Call) -> _Reply:
        build = self._find_build(call)
        records = self.timelines.get((build["project"]["name"].lower(), build["id"]), [])
        return _Reply(200, {"id": str(uuid.uuid4()), "changeId": len(records), "records": records})

    def _update_stage(self, call: _Call) -> _Reply:
        """Retry a stage: only of a completed build, only a stage that did not succeed; the
        build runs again under its id (Azure's "Rerun failed jobs")."""
        build = self._find_build(call)
        self._check_may_queue(call, build)
        key = (build["project"]["name"].lower(), build["id"])
        ref = call.params["stageRefName"]
        stage = self._stage_record(key, ref)
        if stage is None:
            raise wrapped_exception(
                404, f"Stage {ref} does not exist in build {build['id']}.", "StageNotFoundException"
            )
        if call.body.get("state") != "retry":
            raise wrapped_exception(400, "Only a retry is served here.", "NotImplemented")
        if stage["state"] != "completed" or stage["result"] in ("succeeded", "skipped"):
            raise wrapped_exception(
                400,
                f"Stage {ref} cannot be retried: it is {stage['state']} ({stage['result']}).",
                "InvalidOperationException",
            )
        # The new attempt gets a new record id; the timeline keeps a reference to each earlier
        # attempt's record (TimelineAttempt) in previousAttempts.
        previous = {
            "attempt": stage["attempt"],
            "timelineId": str(uuid.uuid4()),
            "recordId": stage["id"],
        }
        stage.update(
            {
                "id": str(uuid.uuid4()),
                "state": "pending",
                "result": None,
                "attempt": stage["attempt"] + 1,
                "previousAttempts": [*stage.get("previousAttempts", []), previous],
            }
        )
        build.update({"status": "inProgress", "result": None})
        self.stage_retries.append((build["project"]["name"], build["id"], ref))
        return _Reply(200, raw=b"")

    def _queue_build(self, call: _Call) -> _Reply:
        """A new build of a known definition, ``notStarted`` until an agent takes it."""
        project = call.params["project"].lower()
        definition = int((call.body.get("definition") or {}).get("id") or 0)
        template = next(
            (
                b
                for (p, _), b in self.builds.items()
                if p == project and b["definition"]["id"] == definition
            ),
            None,
        )
        if template is None:
            raise wrapped_exception(
                404,
                f"The build definition {definition} does not exist.",
                "DefinitionNotFoundException",
            )
        self._check_may_queue(call, template)
        build_id = max(i for _, i in self.builds) + 1
        queued = {
            **template,
            "id": build_id,
            "buildNumber": f"20240611.{build_id}",
            "status": "notStarted",
            "result": None,
            "sourceBranch": call.body.get("sourceBranch") or template["sourceBranch"],
            "sourceVersion": call.body.get("sourceVersion") or template["sourceVersion"],
            "requestedFor": call.user.ref(),
        }
        self.builds[(project, build_id)] = queued
        self.queued_builds.append(queued)
        return _Reply(200, queued)

    def _get_test_runs(self, call: _Call) -> _Reply:
        runs = self.test_runs.get(call.params["project"].lower(), [])
        if "minLastUpdatedDate" in call.query:  # QueryTestRuns shares this route
            return self._query_test_runs(call, runs)
        uri = call.query.get("buildUri")
        if uri is not None:
            runs = [r for r in runs if r["buildConfiguration"]["uri"] == uri]
        skip = int(call.query.get("$skip", "0"))
        top = int(call.query.get("$top", "100"))
        page = runs[skip : skip + top]
        if call.query.get("includeRunDetails", "").lower() != "true":
            page = [{k: v for k, v in r.items() if k not in _RUN_DETAILS} for r in page]
        return _Reply(200, {"count": len(page), "value": page})

    def _query_test_runs(self, call: _Call, runs: list[dict[str, Any]]) -> _Reply:
        wanted = {b for b in call.query.get("buildIds", "").split(",") if b}
        if wanted:
            runs = [r for r in runs if r["build"]["id"] in wanted]
        top = min(int(call.query.get("$top", "100")), 100)
        start = int(call.query.get("continuationToken", "0"))
        page = runs[start : start + top]
        headers = {}
        if start + top < len(runs):
            headers["x-ms-continuationtoken"] = str(start + top)
        return _Reply(200, {"count": len(page), "value": page}, headers)

    def _get_test_results(self, call: _Call) -> _Reply:
        run_id = int(call.params["runId"])
        if run_id not in self.test_results:
            raise wrapped_exception(
                404, f"Test run {run_id} not found.", "TestObjectNotFoundException"
            )
        top = int(call.query.get("$top", "1000"))
        if top > 1000:
            raise wrapped_exception(
                400, "The value of $top must be at most 1000.", "InvalidPropertyException"
            )
        skip = int(call.query.get("$skip", "0"))
        page = self.test_results[run_id][skip : skip + top]
        return _Reply(200, {"count": len(page), "value": page})

    # -- projects and service hooks -------------------------------------------------------
    def _get_project(self, call: _Call) -> _Reply:
        ref = call.params.get("projectId", "")
        found = self.projects.get(ref.lower()) or next(
            (p for p in self.projects.values() if p["id"] == ref), None
        )
        if found is None:
            raise wrapped_exception(
                404,
                f"TF200016: The following project does not exist: {ref}. Verify that the name of "
                "the project is correct and that the project exists on the specified Azure "
                "DevOps Server.",
                "ProjectDoesNotExistWithNameException",
            )
        return _Reply(
            200,
            {
                **found,
                "url": f"{call.base_url}/_apis/projects/{found['id']}",
                "state": "wellFormed",
                "revision": 1,
                "visibility": "private",
                "lastUpdateTime": "2024-01-01T00:00:00Z",
            },
        )

    def _subscription_json(self, stored: dict[str, Any], call: _Call) -> dict[str, Any]:
        inputs = dict(stored.get("consumerInputs") or {})
        if "basicAuthPassword" in inputs:
            inputs["basicAuthPassword"] = MASKED
        return {
            **stored,
            "consumerInputs": inputs,
            "url": f"{call.base_url}/_apis/hooks/subscriptions/{stored['id']}",
        }

    def _check_subscription(self, body: Any, call: _Call) -> dict[str, Any]:
        """Azure's checks on a create or replace, in its order: shape, then permission."""
        if not isinstance(body, dict):
            raise wrapped_exception(
                400, "Value cannot be null. Parameter name: subscription", "ArgumentNullException"
            )
        publisher, event = body.get("publisherId"), body.get("eventType")
        if event not in HOOK_EVENTS.get(str(publisher), set()):
            raise wrapped_exception(
                400,
                f"VS1100004: Event type {event} of publisher {publisher} was not found.",
                "EventTypeNotFoundException",
            )
        if (body.get("consumerId"), body.get("consumerActionId")) != ("webHooks", "httpRequest"):
            raise wrapped_exception(
                400, "The consumer action was not found.", "ConsumerActionNotFoundException"
            )
        project_id = str((body.get("publisherInputs") or {}).get("projectId", ""))
        if project_id not in {p["id"] for p in self.projects.values()}:
            raise wrapped_exception(
                400, f"Invalid value for input projectId: {project_id}", "InputValidationException"
            )
        url = str((body.get("consumerInputs") or {}).get("url", ""))
        if not re.match(r"^https?://[^/\s]+", url):
            raise wrapped_exception(
                400, "Invalid value for input url: a URL is required", "InputValidationException"
            )
        if {(call.user.id, "*"), (call.user.id, project_id)} & self.hooks_read_only:
            raise wrapped_exception(
                403,
                f"Access Denied: {call.user.display_name} needs the following permission(s) on "
                f"the resource PublisherSecurity/{project_id} to perform this action: Edit "
                "Subscription",
                "AccessCheckException",
            )
        return body

    def _stored_subscription(self, body: dict[str, Any], user: User, id_: str) -> dict[str, Any]:
        previous = self.subscriptions.get(id_, {})
        keep = {
            k: body[k]
            for k in (
                "publisherId",
                "eventType",
                "resourceVersion",
                "consumerId",
                "consumerActionId",
                "publisherInputs",
                "consumerInputs",
            )
            if k in body
        }
        stored: dict[str, Any] = {
            "id": id_,
            "status": body.get("status") or "enabled",
            "createdBy": previous.get("createdBy", user.ref()),
            "createdDate": previous.get("createdDate", "2024-01-01T00:00:00Z"),
            "modifiedBy": user.ref(),
            "modifiedDate": "2024-01-02T00:00:00Z",
            "eventDescription": "Any",
            "actionDescription": str((body.get("consumerInputs") or {}).get("url", "")),
            **keep,
        }
        self.subscriptions[id_] = stored
        return stored

    def _find_subscription(self, call: _Call) -> dict[str, Any]:
        found = self.subscriptions.get(call.params.get("subscriptionId", "").lower())
        if found is None:
            raise wrapped_exception(
                404,
                f"VS1050014: Subscription {call.params.get('subscriptionId')} does not exist.",
                "SubscriptionNotFoundException",
            )
        return found

    def _list_subscriptions(self, call: _Call) -> _Reply:
        filters = {
            k: call.query.get(k)
            for k in ("publisherId", "eventType", "consumerId", "consumerActionId")
        }
        value = [
            self._subscription_json(s, call)
            for s in self.subscriptions.values()
            if all(v is None or s.get(k) == v for k, v in filters.items())
        ]
        return _Reply(200, {"count": len(value), "value": value})

    def _create_subscription(self, call: _Call) -> _Reply:
        body = self._check_subscription(call.body, call)
        stored = self._stored_subscription(body, call.user, str(uuid.uuid4()))
        return _Reply(200, self._subscription_json(stored, call))

    def _get_subscription(self, call: _Call) -> _Reply:
        return _Reply(200, self._subscription_json(self._find_subscription(call), call))

    def _replace_subscription(self, call: _Call) -> _Reply:
        found = self._find_subscription(call)
        body = self._check_subscription(call.body, call)
        stored = self._stored_subscription(body, call.user, str(found["id"]))
        return _Reply(200, self._subscription_json(stored, call))

    def _delete_subscription(self, call: _Call) -> _Reply:
        found = self._find_subscription(call)
        project_id = str((found.get("publisherInputs") or {}).get("projectId", ""))
        if {(call.user.id, "*"), (call.user.id, project_id)} & self.hooks_read_only:
            raise wrapped_exception(
                403,
                f"Access Denied: {call.user.display_name} needs the following permission(s) on "
                "the resource PublisherSecurity to perform this action: Delete Subscriptions",
                "AccessCheckException",
            )
        del self.subscriptions[str(found["id"])]
        return _Reply(204)


def _specificity(location: Location, params: dict[str, str]) -> tuple[int, int]:
    literals = sum(1 for p in location.route_template.split("/") if not p.startswith("{"))
    return literals, len(params)


def iter_locations() -> Iterator[Location]:
    """The derived locations, for tests that check the derivation itself."""
    yield from resource_locations()
