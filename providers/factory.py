"""Resolve the provider that publishes a cycle, from its ``source`` and its organisation.

GitHub: the App installation that covers the repository (check runs), else the organisation's
token (commit statuses). Anything unconfigured gets a NullProvider that says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from providers.base import (
    GITHUB_LIMITS,
    Capabilities,
    CiProvider,
    CommentBody,
    CommitStatus,
    PlatformLimits,
    PublishResult,
)
from providers.context import CiContext
from providers.github import GithubProvider, GithubShared
from storage.models import GithubApp, Installation, Organization
from storage.orgs import integration_token
from storage.secret_fields import github_app_owner
from storage.vault import Vault


@dataclass(slots=True)
class ProviderShared:
    """Per-process state every provider instance shares: one HTTP pool, GitHub caches."""

    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0))
    )
    github: GithubShared = field(default_factory=GithubShared)

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


async def find_installation(
    session: AsyncSession, org_id: int, repository: str, installation_id: int | None = None
) -> Installation | None:
    """The live installation for this organisation that covers ``repository``."""
    query = select(Installation).where(
        Installation.org_id == org_id,
        Installation.deleted_at.is_(None),
        Installation.suspended_at.is_(None),
    )
    if installation_id is not None:
        query = query.where(Installation.installation_id == installation_id)
    owner = repository.split("/", 1)[0].lower()
    for row in (await session.execute(query)).scalars():
        if repository in row.repositories or row.account_login.lower() == owner:
            return row
    return None


async def gone_installation(
    session: AsyncSession, org_id: int, repository: str, installation_id: int | None = None
) -> Installation | None:
    """The deleted (uninstalled) installation that used to cover ``repository``, if any."""
    query = select(Installation).where(
        Installation.org_id == org_id, Installation.deleted_at.is_not(None)
    )
    if installation_id is not None:
        query = query.where(Installation.installation_id == installation_id)
    owner = repository.split("/", 1)[0].lower()
    for row in (await session.execute(query.order_by(Installation.deleted_at.desc()))).scalars():
        if repository in row.repositories or row.account_login.lower() == owner:
            return row
    return None


async def resolve_provider(
    session: AsyncSession,
    vault: Vault,
    org: Organization,
    ctx: CiContext,
    shared: ProviderShared,
    *,
    installation_id: int | None = None,
) -> CiProvider | NullProvider:
    """The provider for this cycle's context, or a NullProvider naming what is missing."""
    if not ctx.publishes:
        return NullProvider(f"source {ctx.source!r} publishes nowhere")
    if ctx.source != "github":
        return NullProvider(f"publishing to {ctx.source} is not available in this version")
    installation = await find_installation(session, org.id, ctx.repository, installation_id)
    if installation is not None:
        app = await session.get(GithubApp, installation.github_app_id)
        if app is not None:
            key = vault.decrypt(app.private_key_enc, github_app_owner(app.id, "private_key"))
            return GithubProvider.for_app(
                app_id=app.app_id,
                private_key=key.reveal(),
                installation_id=installation.installation_id,
                http=shared.http,
                shared=shared.github,
                api_url=app.api_url,
                login=app.bot_login,
            )
    token = integration_token(vault, org, "github")
    if token is not None:
        integration = org.integrations["github"]
        return GithubProvider.for_token(
            token=token.reveal(),
            http=shared.http,
            shared=shared.github,
            api_url=integration.base_url or "https://api.github.com",
        )
    gone = await gone_installation(session, org.id, ctx.repository, installation_id)
    if gone is not None:
        return NullProvider(
            f"the GitHub App installation {gone.installation_id} that covered {ctx.repository} "
            "is gone (uninstalled, or GitHub no longer knows it); install the App again or "
            "re-link it with `aac github-app link`"
        )
    return NullProvider(
        f"no GitHub App installation covers {ctx.repository} and organisation {org.slug} has no "
        "GitHub token (`aac github-app link` or `aac integration set github`)"
    )
