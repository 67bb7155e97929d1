"""What a runner's environment says about the CI context, before flags override it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DetectedContext:
    """CiContext fields read from a runner's environment; None where the runner is silent.

    ``runner`` names the CI system ("github-actions", ..., or "none"); ``job_id`` tells
    apart jobs of one pipeline, ``event`` is the runner's own trigger name (informational)
    and ``notes`` explain anything that could not be read.
    """

    runner: str
    source: str | None = None
    repository: str | None = None
    sha: str | None = None
    pr: int | None = None
    ref: str | None = None
    base_ref: str | None = None
    pipeline_id: str | None = None
    pipeline_url: str | None = None
    run_attempt: int | None = None
    suite: str | None = None
    trigger: str | None = None
    job_id: str | None = None
    event: str | None = None
    notes: tuple[str, ...] = ()
