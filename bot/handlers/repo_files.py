"""Reading the repository's ``.aac.yml`` at a commit through the contents API."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from bot.analyse import organisation_redactor
from bot.handlers.context import HandlerContext
from bot.report.config_error import render_config_error
from config.repo_config import CONFIG_PATH, RepoConfig, RepoConfigError, parse_repo_config
from providers.context import CiContext
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
    hctx: HandlerContext, org: Organization, provider: GithubProvider, repository: str, sha: str
) -> RepoConfig | None:
    """``.aac.yml`` at ``sha`` (the documented default when absent).

    None when it is invalid, after a failed check run (or commit status) on ``sha`` says why.
    """
    raw = await provider.get_file(repository, CONFIG_PATH, sha)
    try:
        return parse_repo_config(raw)
    except RepoConfigError as exc:
        error = exc
    redactor = await organisation_redactor(hctx.runtime, org)
    log.warning(
        "invalid repository configuration",
        extra={"repository": repository, "sha": sha, "error": redactor.redact(str(error))},
    )
    status = render_config_error(
        error,
        sha=sha,
        file_url=provider.file_url(repository, CONFIG_PATH, sha),
        redact=redactor.redact,
        limits=provider.limits,
    )
    # The same (sha, name) is found and updated, not duplicated, when several events for
    # one commit (the pull request, each finished workflow run, a redelivery) read the file.
    ctx = CiContext(source="github", repository=repository, sha=sha)
    result = await provider.update_commit_status(ctx, status)
    log.info(
        "configuration error published",
        extra={"repository": repository, "sha": sha, "kind": result.kind, "ids": result.ids},
    )
    return None
