"""Reading the repository's ``.aac.yml`` at a commit through the provider's files API."""

from __future__ import annotations

import logging

from bot.analyse import organisation_redactor
from bot.handlers.context import EventRun
from bot.report.config_error import render_config_error
from config.repo_config import CONFIG_PATH, RepoConfig, RepoConfigError, parse_repo_config
from providers.base import ReadsRepositoryFiles
from providers.context import CiContext
from providers.factory import NullProvider

log = logging.getLogger("aac.handlers.repo_files")


async def read_repo_config(
    run: EventRun, source: str, repository: str, sha: str
) -> RepoConfig | None:
    """``.aac.yml`` at ``sha`` (the documented default when absent, or when the provider
    cannot read files).

    None when there is nobody to publish to (logged), or when the file is invalid, after a
    failed status on ``sha`` says why.
    """
    provider = run.provider
    if isinstance(provider, NullProvider):
        log.info("event ignored: %s", provider.reason, extra={"repository": repository})
        return None
    if not isinstance(provider, ReadsRepositoryFiles):
        return parse_repo_config(None)
    raw = await provider.get_file(repository, CONFIG_PATH, sha)
    try:
        return parse_repo_config(raw)
    except RepoConfigError as exc:
        error = exc
    assert run.scope is not None
    redactor = await organisation_redactor(run.hctx.runtime, run.scope.org)
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
    # one commit (the change, each finished pipeline, a redelivery) read the file.
    ctx = CiContext(source=source, host=run.host, repository=repository, sha=sha)
    result = await provider.update_commit_status(ctx, status)
    log.info(
        "configuration error published",
        extra={"repository": repository, "sha": sha, "kind": result.kind, "ids": result.ids},
    )
    return None
