"""One typed, recording provider for handler tests: what a handler asked of the SCM, and
answers the test chose. It implements the protocol and every optional capability, so each
handler can be driven for any SCM without a server (the SDK adapters have their own fakes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from providers.base import (
    GITLAB_LIMITS,
    ArtifactFilter,
    Capabilities,
    CommentBody,
    CommitStatus,
    PipelineResults,
    PlatformLimits,
    PublishResult,
)
from providers.context import CiContext


@dataclass
class RecordingProvider:
    name: str = "recording"
    limits: PlatformLimits = GITLAB_LIMITS
    capabilities: Capabilities = field(default_factory=Capabilities)
    files: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    writers: set[str] = field(default_factory=set)  # users who may run /aac commands
    login: str = "aac-bot"
    results: dict[str, PipelineResults] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    reruns_in_place: bool = True  # what rerun_pipeline answers: GitLab's and Azure's retries

    async def update_commit_status(
        self, ctx: CiContext, status: CommitStatus, *, previous: PublishResult | None = None
    ) -> PublishResult:
        self.calls.append(("status", ctx.sha, status.state.value, status.name))
        return PublishResult(True, True, "commit_status", ids={"status": status.name})

    async def post_comment_to_pr(
        self, ctx: CiContext, message: CommentBody, *, previous: PublishResult | None = None
    ) -> PublishResult:
        self.calls.append(("comment", str(ctx.pr), message.suite))
        return PublishResult(True, True, "comment", ids={"comment_id": "1"})

    def file_url(self, repository: str, path: str, ref: str) -> str:
        return f"https://scm.example/{repository}/-/blob/{ref}/{path}"

    async def get_file(self, repository: str, path: str, ref: str) -> bytes | None:
        self.calls.append(("get_file", repository, path, ref))
        return self.files.get((repository, path, ref))

    async def may_run_commands(self, repository: str, user: str) -> bool:
        self.calls.append(("may_run_commands", repository, user))
        return user in self.writers

    async def refuse_command(self, ctx: CiContext, user: str, command: str) -> None:
        self.calls.append(("refuse_command", str(ctx.pr), user, command))

    async def answer_command(self, ctx: CiContext, user: str, message: str) -> None:
        self.calls.append(("answer_command", str(ctx.pr), user, message))

    async def bot_login(self) -> str:
        return self.login

    async def pipeline_results(
        self, repository: str, pipeline_id: str, wanted: ArtifactFilter | None = None
    ) -> PipelineResults:
        self.calls.append(("pipeline_results", repository, pipeline_id))
        return self.results.get(pipeline_id, PipelineResults())

    async def rerun_pipeline(self, repository: str, pipeline_id: str) -> bool:
        self.calls.append(("rerun_pipeline", repository, pipeline_id))
        return self.reruns_in_place
