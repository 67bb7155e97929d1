"""The one-line headline: counts, what is new in this PR, flaky, duration, short commit."""

from __future__ import annotations

import math

from bot.report.model import CycleStatus, ReportModel
from bot.report.timeout import timeout_title

ICONS = {
    CycleStatus.PASSED: "✅",
    CycleStatus.FAILED: "❌",
    CycleStatus.INFRA_ERROR: "🚫",
    CycleStatus.NO_RESULTS: "⚪",
    CycleStatus.TIMED_OUT: "⏱️",
}


def format_count(n: int) -> str:
    """Thousands separated, e.g. 1,204."""
    return f"{n:,}"


def format_duration(seconds: float | None) -> str:
    """Human duration: 0.4s, 14s, 2m 14s, 1h 02m."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:  # None, NaN, inf, < 0
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60}s"
    return f"{total // 3600:,}h {total % 3600 // 60:02d}m"


def format_delta(seconds: float) -> str:
    """Signed duration change, e.g. +12s or −1m 3s."""
    sign = "+" if seconds >= 0 else "−"
    return sign + format_duration(abs(seconds))


def _counts(model: ReportModel) -> str:
    t = model.totals
    pieces: list[str] = []
    if t.failing:
        failing = [
            f"{format_count(n)} {w}" for n, w in ((t.failed, "failed"), (t.errored, "errored")) if n
        ]
        notes: list[str] = []
        if model.has_history:
            notes.append(f"{format_count(model.new_failures)} new in this PR")
        if model.flaky_failures:
            notes.append(f"{format_count(model.flaky_failures)} likely flaky")
        pieces.append(", ".join(failing) + (f" ({', '.join(notes)})" if notes else ""))
    if model.flaky:
        pieces.append(f"{format_count(len(model.flaky))} flaky")
    # Tests that passed only on retry are counted as flaky, not passed.
    pieces.append(f"{format_count(len(model.passed_tests))} passed")
    if t.skipped:
        pieces.append(f"{format_count(t.skipped)} skipped")
    return ", ".join(pieces)


def headline_parts(model: ReportModel) -> list[str]:
    """The headline's parts, most important first; the caller joins them with " · "."""
    if model.timed_out is not None:  # status TIMED_OUT
        # The timeout first (it is what the check's title shows), then what ran before it.
        parts = [timeout_title(model.timed_out)]
        if model.totals.total:
            parts.append(_counts(model))
        return [*parts, model.identity.short_sha]
    if model.status is CycleStatus.INFRA_ERROR:
        counts = "Infrastructure error: the pipeline failed before reporting any test results"
    elif model.status is CycleStatus.NO_RESULTS:
        counts = "No test results reported"
    else:
        counts = _counts(model)
    parts = [counts]
    if model.duration is not None and model.status not in (
        CycleStatus.INFRA_ERROR,
        CycleStatus.NO_RESULTS,
    ):
        parts.append(format_duration(model.duration))
    parts.append(model.identity.short_sha)
    return parts


def headline(model: ReportModel, *, icon: bool = True) -> str:
    """E.g. ``❌ 3 failed (2 new in this PR), 1 flaky, 1,204 passed · 2m 14s · abc1234``."""
    text = " · ".join(headline_parts(model))
    return f"{ICONS[model.status]} {text}" if icon else text
