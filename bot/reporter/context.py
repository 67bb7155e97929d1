"""Detect the CI context from a runner's environment and apply the command-line overrides."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

from bot.reporter.detected import DetectedContext
from bot.reporter.runners import RUNNERS
from providers.context import CiContext

__all__ = [
    "ContextOverrides",
    "DetectedContext",
    "MissingContextError",
    "detect_ci_context",
    "idempotency_key",
    "resolve_context",
]

NO_RUNNER = "none"

# The flag that supplies each required field, for error messages.
REQUIRED_FLAGS = {"repository": "--repository", "sha": "--sha"}


def detect_ci_context(
    environ: Mapping[str, str], read_file: Callable[[str], bytes] | None = None
) -> DetectedContext:
    """Which runner this is and what its environment says; pure unless `read_file` reads.

    `read_file` opens GITHUB_EVENT_PATH (the PR head sha lives there); without it the
    event file is not read.
    """
    for runner in RUNNERS:
        if runner.is_active(environ):
            return runner.detect(environ, read_file)
    return DetectedContext(runner=NO_RUNNER)


@dataclass(frozen=True, slots=True)
class ContextOverrides:
    """Values given on the command line; each one that is set wins over detection."""

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


class MissingContextError(ValueError):
    """Required fields are neither detectable nor given; `flags` names the flags to pass."""

    def __init__(self, runner: str, flags: list[str]) -> None:
        self.runner = runner
        self.flags = flags
        where = "no CI runner was detected" if runner == NO_RUNNER else f"not set by {runner}"
        super().__init__(f"missing {', '.join(flags)} ({where}); pass {' and '.join(flags)}")


def apply_overrides(detected: DetectedContext, overrides: ContextOverrides) -> DetectedContext:
    """The detected context with every override that is set replacing its field."""
    given = {
        f.name: getattr(overrides, f.name)
        for f in fields(overrides)
        if getattr(overrides, f.name) is not None
    }
    return replace(detected, **given)


def resolve_context(detected: DetectedContext, overrides: ContextOverrides) -> CiContext:
    """The CiContext to report under, or MissingContextError naming the flags to pass."""
    merged = apply_overrides(detected, overrides)
    repository, sha = merged.repository, merged.sha
    if not repository or not sha:
        missing = [flag for name, flag in REQUIRED_FLAGS.items() if not getattr(merged, name)]
        raise MissingContextError(detected.runner, missing)
    source = merged.source or (detected.runner if detected.runner != NO_RUNNER else "local")
    source = source.strip().lower()
    return CiContext(
        source=source,
        repository=_normalise_repository(repository),
        sha=sha.strip().lower(),
        pr=merged.pr,
        ref=merged.ref,
        base_ref=merged.base_ref,
        pipeline_id=merged.pipeline_id,
        pipeline_url=merged.pipeline_url,
        run_attempt=merged.run_attempt or 1,
        suite=merged.suite or "tests",
        trigger=merged.trigger or "ci",
    )


def _normalise_repository(name: str) -> str:
    name = name.strip().strip("/")
    return name[: -len(".git")] if name.endswith(".git") else name


def idempotency_key(context: CiContext, job_id: str | None = None) -> str:
    """A stable key for creating this job's cycle, so a retried request finds, not duplicates."""
    parts = {
        "source": context.source,
        "repository": context.repository,
        "sha": context.sha,
        "pr": context.pr,
        "pipeline_id": context.pipeline_id,
        "run_attempt": context.run_attempt,
        "suite": context.suite,
        "job_id": job_id,
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return f"aac-report-{digest[:40]}"


def upload_key(cycle_key: str, name: str, content: bytes) -> str:
    """The Idempotency-Key of one file's upload: this job's cycle, this path, these bytes.
    A retried or repeated upload of it replaces the first on the server."""
    digest = hashlib.sha256(content).hexdigest()
    key = hashlib.sha256(f"{cycle_key}\0{name}\0{digest}".encode()).hexdigest()
    return f"aac-upload-{key[:40]}"
