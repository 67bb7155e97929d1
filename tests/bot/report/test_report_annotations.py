"""Where annotations point, and how many there are."""

from __future__ import annotations

import dataclasses

import pytest

from bot.analysis.model import Verdict
from bot.report.annotations import build_annotations, locate, repo_relative
from bot.report.check_run import render_check_run
from bot.report.model import (
    CycleIdentity,
    CycleStatus,
    ReportCluster,
    ReportModel,
    ReportTest,
    Totals,
)
from bot.report.repo_paths import RepoFiles
from bot.results.model import TestCaseResult, TestStatus
from providers.base import GITHUB_LIMITS, AnnotationLevel


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_x.py", "tests/test_x.py"),
        ("./tests/test_x.py", "tests/test_x.py"),
        ("tests\\test_x.py", "tests/test_x.py"),
        ("/home/runner/work/shop/shop/src/a.py", "src/a.py"),
        ("/builds/acme/shop/src/a.py", "src/a.py"),
        ("C:\\a\\shop\\src\\a.cs", "src/a.cs"),
        ("/usr/lib/python3.11/json/decoder.py", None),
        ("/home/runner/work/shop/shop/.venv/lib/site-packages/x.py", None),
        ("src/node_modules/lib/index.js", None),
        ("<frozen importlib._bootstrap>", None),
        ("../outside.py", None),
        ("", None),
    ],
)
def test_repo_relative(path: str, expected: str | None) -> None:
    assert repo_relative(path, "acme/shop") == expected


TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/home/runner/work/shop/shop/tests/test_a.py", line 7, in test_a\n'
    '  File "/home/runner/work/shop/shop/shop/core.py", line 21, in run\n'
    '  File "/opt/py/lib/python3.11/site-packages/lib/x.py", line 3, in go\n'
    "ValueError: no"
)


def _t(**kw: object) -> ReportTest:
    return ReportTest(
        TestCaseResult(name="test_a", status=TestStatus.FAILED, **kw), Verdict.NEW, "r"
    )  # type: ignore[arg-type]


def test_locate_prefers_reported_file_and_line() -> None:
    assert locate(_t(file="tests/test_a.py", line=3, stack_trace=TRACE), "acme/shop") == (
        "tests/test_a.py",
        3,
    )


def test_locate_takes_line_from_trace_for_reported_file() -> None:
    assert locate(_t(file="tests/test_a.py", stack_trace=TRACE), "acme/shop") == (
        "tests/test_a.py",
        7,
    )


def test_locate_uses_innermost_own_frame() -> None:
    assert locate(_t(stack_trace=TRACE), "acme/shop") == ("shop/core.py", 21)


def test_locate_skips_bare_file_names_and_gives_up() -> None:
    java = "x\n\tat com.a.B.c(B.java:5)"
    assert locate(_t(stack_trace=java), "acme/shop") is None
    assert locate(_t(), "acme/shop") is None


def _model(n: int) -> ReportModel:
    tests = tuple(_t(file="tests/test_a.py", line=i + 1, message="boom\x00") for i in range(n))
    cluster = ReportCluster("s", "E", "boom", (), tests)
    return ReportModel(
        identity=CycleIdentity("acme/shop", "a" * 40, "aaaaaaa", "unit"),
        status=CycleStatus.FAILED,
        totals=Totals(total=n, failed=n),
        duration=1.0,
        clusters=(cluster,),
        flaky=(),
        passed_tests=(),
        deltas=None,
        has_history=False,
    )


def test_annotations_are_capped_and_counted() -> None:
    annotations, failing = build_annotations(_model(700), GITHUB_LIMITS, cap=500)
    assert len(annotations) == 500
    assert failing == 700
    first = annotations[0]
    assert (first.path, first.start_line, first.level) == (
        "tests/test_a.py",
        1,
        AnnotationLevel.FAILURE,
    )
    assert "\x00" not in first.message
    assert first.title == "test_a failed"


def test_with_the_file_list_only_repository_paths_are_annotated() -> None:
    java = "x\n\tat com.a.BTest.c(BTest.java:5)"
    model = dataclasses.replace(
        _model(2),
        clusters=(
            ReportCluster(
                "s",
                "E",
                "boom",
                (),
                (_t(stack_trace=java), _t(file="/tmp/gen/test_gone.py", line=3)),
            ),
        ),
    )
    files = RepoFiles(["src/test/java/com/a/BTest.java", "tests/test_a.py"])
    annotations, failing = build_annotations(model, GITHUB_LIMITS, files=files)
    assert [(a.path, a.start_line) for a in annotations] == [("src/test/java/com/a/BTest.java", 5)]
    assert failing == 2
    # Without the list (a truncated tree), today's heuristics: the bare name is skipped.
    assert build_annotations(model, GITHUB_LIMITS)[0] == ()


def test_check_run_keeps_unmatched_failures_in_the_summary() -> None:
    check = render_check_run(_model(1), GITHUB_LIMITS, files=["src/other.py"])
    assert check.annotations == ()
    assert "test\\_a — 🆕 new in this PR" in (check.summary or "")
