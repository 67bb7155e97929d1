"""What every provider may use and return: the per-process shared state and the NullProvider."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from providers.azure_devops.provider import AzureShared
from providers.base import (
    GITHUB_LIMITS,
    Capabilities,
    CommentBody,
    CommitStatus,
    PlatformLimits,
    PublishResult,
)
from providers.context import CiContext
from providers.github.provider import GithubShared, SharedWriteSlots
from providers.gitlab.provider import GitlabShared


@dataclass(slots=True)
class ProviderShared:
    """Per-process state every provider instance shares: one HTTP pool, each SCM's caches
    (one field per SCM package that needs one)."""

    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0))
    )
    github: GithubShared = field(default_factory=GithubShared)
    gitlab: GitlabShared = field(default_factory=GitlabShared)
    azure: AzureShared = field(default_factory=AzureShared)

    @classmethod
    def paced(cls, write_slots: SharedWriteSlots) -> ProviderShared:
        """Shared state whose SCM writes are paced across every process of the database."""
        return cls(github=GithubShared(write_slots=write_slots))

    async def close(self) -> None:
        await self.http.aclose()


class NullProvider:
    """Publishes nothing and says why; used instead of ``if provider is None`` checks."""

    name = "none"
    limits: PlatformLimits = GITHUB_LIMITS
    capabilities = Capabilities(commit_status=False, comments=False)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def update_commit_status(
        self, ctx: CiContext, status: CommitStatus, *, previous: PublishResult | None = None
    ) -> PublishResult:
        return PublishResult(False, False, "commit_status", reason=self.reason)

    async def post_comment_to_pr(
        self, ctx: CiContext, message: CommentBody, *, previous: PublishResult | None = None
    ) -> PublishResult:
        return PublishResult(False, False, "comment", reason=self.reason)
