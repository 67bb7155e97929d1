"""GitHub's results source: a finished workflow run's artifacts, downloaded whole.

Only the artifacts a suite wants (by name, from ``.aac.yml``) are downloaded, each up to
``MAX_ARTIFACT_BYTES``; the core opens the zips and parses the result files inside.
"""

from __future__ import annotations

from typing import Protocol

from providers.base import ArtifactFilter, PipelineResults, ResultFileBlob
from providers.github.provider import Artifact

MAX_ARTIFACT_BYTES = 200 * 1024 * 1024


class ArtifactStore(Protocol):
    async def list_artifacts(self, repository: str, run_id: int) -> list[Artifact]: ...

    async def download_artifact(
        self, repository: str, artifact_id: int, *, max_bytes: int
    ) -> bytes: ...


async def workflow_run_results(
    store: ArtifactStore, repository: str, run_id: int, wanted: ArtifactFilter | None
) -> PipelineResults:
    """The run's unexpired artifacts that ``wanted`` accepts, as zips for the core to open."""
    artifacts = [
        a
        for a in await store.list_artifacts(repository, run_id)
        if not a.expired and (wanted is None or wanted(a.name))
    ]
    files = [
        ResultFileBlob(
            artifact.name,
            await store.download_artifact(repository, artifact.id, max_bytes=MAX_ARTIFACT_BYTES),
            archive=True,
        )
        for artifact in artifacts
    ]
    return PipelineResults(files=tuple(files), origin="artifacts")
