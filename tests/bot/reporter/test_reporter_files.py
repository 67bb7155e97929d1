"""Glob expansion, upload names, gzip bodies and sizes."""

from __future__ import annotations

import gzip
from pathlib import Path

from bot.reporter.files import expand_globs, gzip_body, human_size


def test_recursive_globs_are_unique_sorted_and_relative(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("top.xml", "a/one.xml", "a/b/two.xml", "a/b/skip.txt"):
        (tmp_path / rel).write_text("<x/>")
    (tmp_path / "a" / "dir.xml").mkdir()  # a directory that matches is not a file

    files = expand_globs(["**/*.xml", "a/*.xml"], tmp_path)

    assert [f.name for f in files] == ["a/b/two.xml", "a/one.xml", "top.xml"]
    assert all(f.size == 4 for f in files)


def test_absolute_patterns_and_no_match(tmp_path: Path) -> None:
    (tmp_path / "r.xml").write_text("<x/>")

    assert [f.name for f in expand_globs([str(tmp_path / "*.xml")], tmp_path)] == ["r.xml"]
    assert expand_globs(["nothing/**/*.xml"], tmp_path) == []


def test_gzip_body_round_trips_and_is_deterministic() -> None:
    data = b"<testsuite/>" * 100

    assert gzip.decompress(gzip_body(data)) == data
    assert gzip_body(data) == gzip_body(data)


def test_human_size() -> None:
    assert [human_size(n) for n in (12, 120 * 1024, 3_565_158, 5 * 1024**3)] == [
        "12 B",
        "120 KB",
        "3.4 MB",
        "5.0 GB",
    ]
