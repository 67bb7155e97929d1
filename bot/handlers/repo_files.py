"""Reading the repository's ``.aac.yml`` at a commit through the contents API."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from bot.ci_context import CiContext
from bot.handlers.context import HandlerContext
from config.repo_config import CONFIG_PATH, RepoConfig, RepoConfigError, parse_repo_config
from providers.factory import resolve_provider
from providers.github import GithubProvider
from storage.models import Organization

log = logging.getLogger("aac.handlers.repo_files")


async def github_provider(
    hctx: HandlerContext,
    session: AsyncSession,
    org: Organization,
    repository: str,
    sha: str,
    installation_id: int | None,
) -> GithubProvider | None:
    """The GitHub provider for this organisation and repository, or None when unconfigured."""
    ctx = CiContext(source="github", repository=repository, sha=sha)
    provider = await resolve_provider(
        session, hctx.runtime.vault, org, ctx, hctx.shared, installation_id=installation_id
    )
    return provider if isinstance(provider, GithubProvider) else None


async def read_repo_config(
    provider: GithubProvider, repository: str, sha: str
) -> RepoConfig | None:
    """``.aac.yml`` at ``sha`` (the documented default when absent); None when it is invalid."""
    raw = await provider.get_file(repository, CONFIG_PATH, sha)
    try:
        return parse_repo_config(raw)
    except RepoConfigError as exc:
        log.warning(
            "invalid repository configuration", extra={"repository": repository, "error": str(exc)}
        )
        return None
