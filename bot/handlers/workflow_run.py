"""``workflow_run`` completed is "pipeline finished": ingest the run's test-result artifacts.

No change to the user's workflow is needed: artifacts whose names match ``.aac.yml`` are
downloaded, result files inside the zip are parsed and stored, and the cycle is completed.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass, field

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.events import IngestWorkflowRun
from bot.handlers.context import HandlerContext
from bot.handlers.pull_request import repo_at_commit
from bot.results.errors import ResultFileError
from bot.results.limits import ParseLimits
from bot.results.parse import parse_results
from bot.results.parsed import ParsedFile
from config.repo_config import SuiteConfig
from providers.context import CiContext
from storage.models import TestCycle

log = logging.getLogger("aac.handlers.workflow_run")

MAX_ARTIFACT_BYTES = 200 * 1024 * 1024
MAX_FILES_PER_ARTIFACT = 2000


@dataclass(slots=True)
class ExtractedFiles:
    parsed: list[ParsedFile] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)


def parse_artifact(
    name: str, zip_bytes: bytes, suite: SuiteConfig, limits: ParseLimits
) -> ExtractedFiles:
    """Parse the result files inside one artifact zip; bad files are reported, not fatal."""
    found = ExtractedFiles()
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except zipfile.BadZipFile:
        found.rejected.append({"name": name, "reason": "artifact is not a zip archive"})
        return found
    members = [m for m in archive.infolist() if not m.is_dir() and suite.wants_file(m.filename)]
    for member in members[:MAX_FILES_PER_ARTIFACT]:
        display = f"{name}/{member.filename}"
        if member.file_size > limits.max_decompressed_bytes:
            found.rejected.append({"name": display, "reason": "file too large"})
            continue
        try:
            with archive.open(member) as handle:
                found.parsed.append(parse_results(handle, filename=display, limits=limits))
        except ResultFileError as exc:
            found.rejected.append({"name": display, "reason": exc.reason})
    return found


@dataclass(frozen=True, slots=True)
class FetchedRun:
    """A finished run's results, downloaded and parsed per suite before any transaction."""

    org_id: int
    suites: list[tuple[SuiteConfig, ExtractedFiles]]


async def fetch_workflow_run(hctx: HandlerContext, action: IngestWorkflowRun) -> FetchedRun | None:
    """Download and parse the run's artifacts for each configured suite that wants some.

    No transaction is open meanwhile: the downloads can take a while (up to
    ``MAX_ARTIFACT_BYTES`` each), and on SQLite a transaction that has written holds the one
    write lock every webhook intake needs.
    """
    repo = await repo_at_commit(
        hctx, action.installation_id, action.repository, action.sha, action.api_url
    )
    if repo is None:
        return None
    provider, config = repo.provider, repo.config
    suites = [s for s in config.suites_for("workflow_run") if s.accepts_workflow(action.workflow)]
    if not suites:
        return None
    artifacts = [
        a for a in await provider.list_artifacts(action.repository, action.run_id) if not a.expired
    ]
    limits = ParseLimits(max_file_bytes=hctx.runtime.settings.max_result_file_bytes)
    fetched = FetchedRun(repo.org.id, [])
    for suite in suites:
        wanted = [a for a in artifacts if suite.wants_artifact(a.name)]
        if not wanted:
            continue
        extracted = ExtractedFiles()
        for artifact in wanted:
            data = await provider.download_artifact(
                action.repository, artifact.id, max_bytes=MAX_ARTIFACT_BYTES
            )
            # Parsing is CPU work: keep it off the event loop.
            part = await anyio.to_thread.run_sync(
                parse_artifact, artifact.name, data, suite, limits
            )
            extracted.parsed += part.parsed
            extracted.rejected += part.rejected
        if extracted.parsed or extracted.rejected:
            fetched.suites.append((suite, extracted))
    return fetched


async def ingest_workflow_run(
    session: AsyncSession, fetched: FetchedRun, action: IngestWorkflowRun
) -> list[TestCycle]:
    """Store the fetched results per suite and complete the cycles (database only)."""
    completed: list[TestCycle] = []
    for suite, extracted in fetched.suites:
        ctx = CiContext(
            source="github",
            repository=action.repository,
            sha=action.sha,
            pr=action.pr,
            ref=action.ref,
            base_ref=action.base_ref,
            pipeline_id=str(action.run_id),
            pipeline_url=action.html_url,
            run_attempt=action.run_attempt,
            suite=suite.name,
            trigger="workflow_run",
            extra={"installation_id": action.installation_id, "workflow_run_id": action.run_id},
        )
        cycle, _created = await cycles.create_cycle(session, fetched.org_id, ctx)
        if cycle.status != "collecting":
            continue  # this run was already ingested (a redelivery)
        cycle.context_extra = {**(cycle.context_extra or {}), **ctx.extra}
        for parsed in extracted.parsed:
            await cycles.add_results(session, cycle, parsed.filename, parsed.format, parsed.results)
        if extracted.rejected:
            cycle.files = [*cycle.files, *({**r, "rejected": True} for r in extracted.rejected)]
        outcome = {"success": "success", "cancelled": "cancelled"}.get(
            action.conclusion or "", "failure"
        )
        await cycles.complete_cycle(session, cycle, outcome=outcome, exit_code=None)
        completed.append(cycle)
    return completed
