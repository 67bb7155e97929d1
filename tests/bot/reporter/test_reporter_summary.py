"""Reading the cycle JSON: final statuses, failures, the printed summary."""

from __future__ import annotations

from typing import Any

import pytest

from bot.reporter.client import Rejection, display_url
from bot.reporter.summary import format_summary, has_failures, is_final


def cycle(status: str, **counts: int) -> dict[str, Any]:
    return {"id": 7, "status": status, "totals": counts, "report_url": "https://aac/cycles/7"}


@pytest.mark.parametrize(
    ("status", "final"),
    [
        ("collecting", False),
        ("analysing", False),
        ("done", True),
        ("infra_error", True),
        ("cancelled", True),
        ("superseded", True),
    ],
)
def test_is_final(status: str, final: bool) -> None:
    assert is_final(cycle(status)) is final


def test_has_failures() -> None:
    assert has_failures(cycle("done", failed=1))
    assert has_failures(cycle("done", errored=1))
    assert has_failures(cycle("infra_error"))
    assert not has_failures(cycle("done", passed=3, flaky=1, skipped=2))


def test_summary_is_truncated_and_tolerates_bad_totals() -> None:
    data = {**cycle("done"), "totals": {"total": "x"}, "summary": "\n".join(["line"] * 30)}

    lines = format_summary(data)

    assert lines[0] == "cycle 7 done: 0 tests: 0 passed, 0 failed, 0 errored, 0 skipped, 0 flaky"
    assert lines[1] == "report: https://aac/cycles/7"
    assert lines[-1] == "... (10 more lines in the report)"


def test_rejection_describe_and_display_url() -> None:
    assert Rejection(422, "invalid_file", "bad", "r.xml", 3, 9).describe() == (
        "bad (invalid_file, HTTP 422) at r.xml:3:9"
    )
    assert display_url("https://u:p@aac.example:8443/x") == "https://aac.example:8443/x"
