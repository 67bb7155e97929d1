"""Check-run annotations: one per failing test, at a repo-relative file and line."""

from __future__ import annotations

import re

from bot.analysis.signature import is_library, parse_frames
from bot.report.markdown import clean, truncate_bytes, truncate_chars
from bot.report.model import ReportModel, ReportTest, display_clusters
from bot.report.repo_paths import RepoFiles, locate_in_repo
from providers.base import Annotation, AnnotationLevel, PlatformLimits

MAX_ANNOTATIONS = 500  # in total; the provider chunks them 50 per request
_MESSAGE_BYTES = 4_096
_DETAILS_BYTES = 16_384
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:/")


def repo_relative(path: str, repository: str) -> str | None:
    """``path`` relative to the repository root, or None for third-party and system paths.

    An absolute path is kept only if it passes through a directory named like the
    repository (CI checkouts: ``/home/runner/work/<repo>/<repo>/``, ``/builds/<ns>/<repo>/``).
    """
    p = path.strip().replace("\\", "/").removeprefix("file://")
    if not p or is_library(p):
        return None
    if p.startswith("/") or _WINDOWS_DRIVE.match(p):
        name = repository.rstrip("/").rsplit("/", 1)[-1]
        if not name:
            return None
        for anchor in (f"/{name}/{name}/", f"/{name}/"):
            at = p.find(anchor)
            if at >= 0:
                p = p[at + len(anchor) :]
                break
        else:
            return None
    while p.startswith("./"):
        p = p[2:]
    if not p or ".." in p.split("/"):
        return None
    return p


def locate(
    test: ReportTest, repository: str, files: RepoFiles | None = None
) -> tuple[str, int] | None:
    """Where to annotate a test: its reported file/line, else its innermost own frame.

    With the repository's ``files`` the path must be one of them (``locate_in_repo``);
    without them (an unknown or too large tree) paths are cleaned up by heuristics.
    """
    if files is not None:
        return locate_in_repo(test.result, files)
    r = test.result
    frames = parse_frames(r.stack_trace)
    if r.file:
        path = repo_relative(r.file, repository)
        if path is not None:
            line = r.line
            if line is None:
                # The trace often knows the line in the reported file.
                line = next(
                    (f.line for f in frames if f.line and f.path.replace("\\", "/").endswith(path)),
                    None,
                )
            return path, max(line or 1, 1)
    for frame in frames:
        # A bare file name (Java, `go test`) does not say which directory: skip it.
        if frame.line is None or "/" not in frame.path.replace("\\", "/"):
            continue
        path = repo_relative(frame.path, repository)
        if path is not None:
            return path, max(frame.line, 1)
    return None


def _annotation(test: ReportTest, path: str, line: int, limits: PlatformLimits) -> Annotation:
    r = test.result
    status = r.status.value
    message_cap = min(limits.annotation_message_bytes or _MESSAGE_BYTES, _MESSAGE_BYTES)
    details_cap = min(limits.annotation_message_bytes or _DETAILS_BYTES, _DETAILS_BYTES)
    # Cut before cleaning: messages and traces can be megabytes.
    message = clean((r.message or r.failure_type or f"Test {status}")[:message_cap])
    if test.reason:
        message += f"\n\n({test.verdict.value}: {clean(test.reason[:200])})"
    title = " ".join(clean(f"{r.test_id[:300]} {status}").split())
    details = clean(r.stack_trace[:details_cap]) if r.stack_trace else None
    return Annotation(
        path=path,
        start_line=line,
        end_line=line,
        level=AnnotationLevel.FAILURE,
        message=truncate_bytes(message, message_cap),
        title=truncate_bytes(truncate_chars(title, 255), 255),
        raw_details=truncate_bytes(details, details_cap) if details else None,
    )


def build_annotations(
    model: ReportModel,
    limits: PlatformLimits,
    cap: int = MAX_ANNOTATIONS,
    files: RepoFiles | None = None,
) -> tuple[tuple[Annotation, ...], int]:
    """Annotations for failing tests (new clusters first), at most ``cap``.

    Also returns how many failing tests there are, so a capped list can say so. A test whose
    location matches none of ``files`` (when given) gets no annotation, only its summary line.
    """
    found: list[Annotation] = []
    failing = 0
    for cluster in display_clusters(model):
        failing += len(cluster.tests)
        for test in cluster.tests:
            if len(found) >= cap:
                break
            where = locate(test, model.identity.repository, files)
            if where is not None:
                found.append(_annotation(test, where[0], where[1], limits))
    return tuple(found), failing
