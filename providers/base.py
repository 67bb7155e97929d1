"""The CiProvider protocol, the data it speaks, per-platform limits and the typed error tree.

No SDK object crosses this boundary: providers take and return only the types below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from providers.context import CiContext
from providers.events import PipelineFinished


# ---------------------------------------------------------------------------------------
# Limits and capabilities
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlatformLimits:
    """Body limits a platform enforces. ``*_bytes`` are UTF-8 bytes, ``*_chars`` characters."""

    comment_chars: int
    status_description_chars: int
    check_summary_bytes: int | None = None  # GitHub check runs only
    check_text_bytes: int | None = None
    annotations_per_request: int | None = None
    annotation_message_bytes: int | None = None
    check_title_chars: int | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can publish natively."""

    check_runs: bool = False
    annotations: bool = False
    requested_actions: bool = False
    pr_status: bool = False
    commit_status: bool = True
    comments: bool = True


GITHUB_LIMITS = PlatformLimits(
    comment_chars=65_536,
    status_description_chars=140,
    check_summary_bytes=65_535,
    check_text_bytes=65_535,
    annotations_per_request=50,
    annotation_message_bytes=64 * 1024,
    check_title_chars=255,
)
GITLAB_LIMITS = PlatformLimits(comment_chars=1_000_000, status_description_chars=255)
AZURE_LIMITS = PlatformLimits(comment_chars=150_000, status_description_chars=4_000)


# ---------------------------------------------------------------------------------------
# What gets published
# ---------------------------------------------------------------------------------------
class StatusState(StrEnum):
    """Lifecycle of a published status; each provider maps it to its platform's states."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class Conclusion(StrEnum):
    """Final result of a completed status; each provider maps it to its platform's outcomes."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    TIMED_OUT = "timed_out"
    ACTION_REQUIRED = "action_required"


class AnnotationLevel(StrEnum):
    NOTICE = "notice"
    WARNING = "warning"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class Annotation:
    """A line-level finding attached to a check run (GitHub) or left out elsewhere."""

    path: str
    start_line: int
    end_line: int
    level: AnnotationLevel
    message: str
    title: str | None = None
    raw_details: str | None = None


@dataclass(frozen=True, slots=True)
class RequestedAction:
    """A button on a check run (GitHub: label <= 20 chars, identifier <= 20 chars)."""

    label: str
    description: str
    identifier: str


@dataclass(frozen=True, slots=True)
class CommitStatus:
    """Everything a provider needs to create or update its native status for (sha, suite)."""

    state: StatusState
    name: str  # the check run / status context name, e.g. "aac / tests"
    description: str  # short one-liner, fits the platform's status description
    conclusion: Conclusion | None = None  # required when state is COMPLETED
    title: str | None = None  # check run output title
    summary: str | None = None  # check run output summary (markdown)
    text: str | None = None  # check run output text (markdown)
    annotations: tuple[Annotation, ...] = ()
    details_url: str | None = None
    external_id: str | None = None  # the cycle id
    actions: tuple[RequestedAction, ...] = ()


@dataclass(frozen=True, slots=True)
class CommentBody:
    """A sticky PR/MR comment: the body carries the hidden marker for the suite."""

    suite: str
    body: str

    @property
    def marker(self) -> str:
        return comment_marker(self.suite)


def comment_marker(suite: str) -> str:
    """The hidden marker that identifies our comment for one suite."""
    return f"<!-- aac:report:{suite} -->"


@dataclass(slots=True)
class PublishResult:
    """What one provider call did; stored with the cycle."""

    attempted: bool
    succeeded: bool
    kind: str  # "check_run", "commit_status", "pr_status", "comment"
    ids: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    reason: str | None = None


# ---------------------------------------------------------------------------------------
# Errors: the worker decides retry, reschedule or dead from the class alone
# ---------------------------------------------------------------------------------------
class ProviderError(Exception):
    """Base of every error a provider raises; messages never contain secrets."""


class AuthFailed(ProviderError):
    """The token or app credentials were refused (401, or 403 that is not a rate limit)."""


class NotFound(ProviderError):
    """The repository, PR, comment or installation does not exist (or is not visible)."""


class RateLimited(ProviderError):
    """A primary or secondary rate limit; retry no earlier than ``retry_at``."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class Transient(ProviderError):
    """5xx, timeouts, connection errors: worth retrying with backoff."""


class TooLarge(ProviderError):
    """The platform refused a body as too large (should not happen after rendering)."""


class NotConfigured(ProviderError):
    """No credentials for this organisation and platform."""


# ---------------------------------------------------------------------------------------
# The protocol
# ---------------------------------------------------------------------------------------
class CiProvider(Protocol):
    """An SCM adapter. Both calls are idempotent upserts keyed by (PR, suite) / (sha, suite)."""

    name: str
    limits: PlatformLimits
    capabilities: Capabilities

    async def update_commit_status(
        self, ctx: CiContext, status: CommitStatus, *, previous: PublishResult | None = None
    ) -> PublishResult:
        """Create or update the native status for ``ctx.sha`` and ``ctx.suite``."""
        ...

    async def post_comment_to_pr(
        self, ctx: CiContext, message: CommentBody, *, previous: PublishResult | None = None
    ) -> PublishResult:
        """Create or edit in place the one comment for ``ctx.pr`` and ``ctx.suite``."""
        ...


@runtime_checkable
class ListsRepositoryFiles(Protocol):
    """A provider that can list a repository's files, to put annotations on real paths."""

    async def repository_files(self, repository: str, sha: str) -> tuple[str, ...] | None:
        """Every file path at commit ``sha``; None when the platform cannot list them all."""
        ...


# ---------------------------------------------------------------------------------------
# Optional capabilities: what the SCM-neutral core may ask of a provider beyond publishing.
# Each is checked with isinstance() where it is used, so a provider implements only what its
# platform offers.
# ---------------------------------------------------------------------------------------
@runtime_checkable
class ReadsRepositoryFiles(Protocol):
    """A provider that can read one file of a repository at a commit (``.aac.yml``)."""

    def file_url(self, repository: str, path: str, ref: str) -> str:
        """The web page of ``path`` at ``ref``, for people (a configuration error links it)."""
        ...

    async def get_file(self, repository: str, path: str, ref: str) -> bytes | None:
        """The file's bytes at ``ref``; None when the file does not exist there."""
        ...


@runtime_checkable
class ChecksCommandPermission(Protocol):
    """A provider that can tell whether a user may run ``/aac`` commands on a repository."""

    async def may_run_commands(self, repository: str, user: str) -> bool:
        """True for users with write access (GitHub), Developer or above (GitLab),
        contributors (Azure DevOps)."""
        ...


@runtime_checkable
class AnswersRefusedCommands(Protocol):
    """A provider that tells a user, on the change, why their ``/aac`` command was refused."""

    async def refuse_command(self, ctx: CiContext, user: str, command: str) -> None:
        """Reply on ``ctx.pr`` to ``user`` saying who may run ``/aac <command>`` (in the
        platform's terms: "Developer or above" on GitLab)."""
        ...


@runtime_checkable
class AnswersCommands(Protocol):
    """A provider that replies on the change to an ``/aac`` command it could not carry out."""

    async def answer_command(self, ctx: CiContext, user: str, message: str) -> None:
        """Post ``message`` on ``ctx.pr`` as a new comment addressed to ``user`` (mentioned
        where the platform mentions by login). Never retried blindly: a repeated reply is
        noise, a lost one only a missed hint."""
        ...


@runtime_checkable
class KnowsBotIdentity(Protocol):
    """A provider that knows the login its own writes appear under, to ignore its own events."""

    async def bot_login(self) -> str:
        """The login (user name) the provider's credentials act as."""
        ...


class CaseOutcome(StrEnum):
    """A test case's outcome as an SCM's own test report states it."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ReportedCase:
    """One test case from an SCM's own test report (GitLab's pipeline test report, Azure's
    Test Results API): already structured, so it needs no result-file parsing."""

    suite: str
    name: str
    classname: str = ""
    outcome: CaseOutcome = CaseOutcome.PASSED
    duration_seconds: float | None = None
    message: str | None = None
    trace: str | None = None
    file: str | None = None


@dataclass(frozen=True, slots=True)
class ResultFileBlob:
    """A raw result file fetched from a pipeline (an artifact), parsed later by the core.

    With ``archive`` the content is a zip of result files (a GitHub artifact), which the core
    opens and picks files from by the suite's ``files`` patterns; ``name`` is the archive's.
    """

    name: str
    content: bytes
    archive: bool = False


@dataclass(frozen=True, slots=True)
class PipelineResults:
    """What a finished pipeline reported: structured cases, raw files, or both."""

    cases: tuple[ReportedCase, ...] = ()
    files: tuple[ResultFileBlob, ...] = ()
    # Where the results came from, for the cycle's record ("test_report", "artifacts").
    origin: str = ""


# Which artifacts a results source should fetch: by name, before downloading anything.
ArtifactFilter = Callable[[str], bool]


@runtime_checkable
class FetchesPipelineResults(Protocol):
    """A provider that can fetch a finished pipeline's test results (its results source)."""

    async def pipeline_results(
        self, repository: str, pipeline_id: str, wanted: ArtifactFilter | None = None
    ) -> PipelineResults:
        """The pipeline's results: the SCM's own test report where it has one, else the
        artifacts ``wanted`` accepts (all when None)."""
        ...


@runtime_checkable
class RerunsPipelines(Protocol):
    """A provider that can re-run the CI pipeline a cycle came from."""

    async def rerun_pipeline(self, repository: str, pipeline_id: str) -> bool:
        """Ask the SCM's CI to run the pipeline again; True when it re-runs *in place* (the
        same pipeline id and attempt finish again), False when the re-run has an id or attempt
        of its own, or nothing was re-run."""
        ...


@runtime_checkable
class CompletesPipelineEvents(Protocol):
    """A provider whose SCM's pipeline events leave out the repository or commit (Azure
    DevOps names only the run): it reads them from its CI before the results are fetched."""

    async def resolve_pipeline(self, event: PipelineFinished) -> PipelineFinished | None:
        """The event with repository, commit and change filled in; None when the run is not
        one this provider publishes for (e.g. a pipeline building a GitHub repository)."""
        ...


# ---------------------------------------------------------------------------------------
# Helpers every provider applies to what it sends
# ---------------------------------------------------------------------------------------
def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def body_with_marker(message: CommentBody) -> str:
    """The comment body, guaranteed to carry the suite's hidden marker."""
    if message.marker in message.body:
        return message.body
    return f"{message.marker}\n{message.body}"


def comment_within_limit(
    message: CommentBody, limits: PlatformLimits, *, noun: str, platform: str
) -> str:
    """The body to post (``body_with_marker``); TooLarge naming the ``noun`` ("comment",
    "note") and ``platform`` when it exceeds ``limits.comment_chars``, before any request."""
    body = body_with_marker(message)
    if len(body) > limits.comment_chars:
        possessive = f"{platform}'" if platform.endswith("s") else f"{platform}'s"
        raise TooLarge(f"{noun} of {len(body):,} characters exceeds {possessive} limit")
    return body


def refusal_reply(mention: str, who_may: str, change: str, command: str) -> str:
    """The reply to a refused ``/aac <command>``, in one wording for every SCM; the command is
    quoted mid-line so that the bot's own reply can never be read as one."""
    return f"{mention} only {who_may} may run `/aac {command}` on this {change}; ask one of them."
