"""Find the result files the globs name and prepare their upload bodies."""

from __future__ import annotations

import glob
import gzip
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ResultFile:
    """A file to upload: where it is, the name the server sees, and its size on disk."""

    path: Path
    name: str
    size: int


def expand_globs(patterns: Iterable[str], root: Path) -> list[ResultFile]:
    """Regular files matching any pattern (`**` recursive), relative to `root`, sorted, unique."""
    seen: dict[Path, ResultFile] = {}
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(root / pattern)
        for match in glob.glob(full, recursive=True):
            path = Path(match)
            if not path.is_file():
                continue
            key = path.resolve()
            if key not in seen:
                seen[key] = ResultFile(path, upload_name(path, root), path.stat().st_size)
    return sorted(seen.values(), key=lambda f: f.name)


def upload_name(path: Path, root: Path) -> str:
    """The path relative to `root` in POSIX form; absolute if the file lies outside it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def gzip_body(data: bytes) -> bytes:
    """Gzip with a zero mtime, so the same file always gives the same body."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def human_size(size: int) -> str:
    """A short size for progress lines: `512 B`, `120 KB`, `3.4 MB`."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    if size < 1024**3:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{size / 1024**3:.1f} GB"
