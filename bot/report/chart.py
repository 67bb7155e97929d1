"""The report page's history chart: pass rate (line, left axis) and duration (bars, right
axis) over a suite's recent cycles, as inline SVG. Pure; readable with one cycle or thirty."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from bot.report.headline import format_duration

WIDTH, HEIGHT = 640, 210
LEFT, RIGHT, TOP, BOTTOM = 48, 64, 40, 40  # room for the title, values and axes' labels
MAX_X_LABELS = 8  # more would overlap; the rest are in each point's tooltip


@dataclass(frozen=True, slots=True)
class SuitePoint:
    """One cycle of the suite, for the history chart."""

    label: str  # short sha
    pass_rate: float  # 0..1
    duration: float  # seconds
    current: bool = False  # the cycle this page reports


def point_labels(points: Sequence[SuitePoint]) -> list[str]:
    """One label per point, all different: a commit run twice reads ``abc1234 (2)``."""
    totals = Counter(p.label for p in points)
    seen: Counter[str] = Counter()
    labels: list[str] = []
    for point in points:
        seen[point.label] += 1
        label = point.label if totals[point.label] == 1 else f"{point.label} ({seen[point.label]})"
        labels.append(f"{label} · this" if point.current else label)
    return labels


def _shown_labels(count: int) -> set[int]:
    """Indices whose label is drawn under the axis: all of a few, else spaced out and the last."""
    if count <= MAX_X_LABELS:
        return set(range(count))
    step = -(-count // MAX_X_LABELS)  # ceiling division
    shown = list(range(0, count, step))
    if count - 1 - shown[-1] < step / 2:  # too close to the last one, which always shows
        shown.pop()
    return {*shown, count - 1}


def _duration(seconds: float) -> str:
    return "0s" if seconds <= 0 else format_duration(seconds)


def _percent(rate: float) -> str:
    # Never round a failing cycle up to 100%.
    text = f"{rate:.0%}"
    return "99%" if text == "100%" and rate < 1 else text


def history_chart(points: Sequence[SuitePoint]) -> str:
    """The SVG, or a sentence when there is nothing to draw."""
    if not points:
        return '<p class="meta">No cycles of this suite with test results yet.</p>'
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = inner_w / len(points)
    bar_w = min(40.0, slot * 0.6)
    longest = max(p.duration for p in points)
    scale = longest if longest > 0 else 1.0
    bottom = TOP + inner_h
    labels = point_labels(points)
    shown = _shown_labels(len(points))
    parts: list[str] = []
    # Left axis: pass rate 0, 50 and 100 %, with grid lines.
    for rate in (0.0, 0.5, 1.0):
        y = bottom - inner_h * rate
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            'stroke="#d1d9e0" stroke-dasharray="3 3"/>'
            f'<text class="axis-pass" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{rate:.0%}</text>"
        )
    # Right axis: duration on the same grid lines, 0, half and the longest.
    for fraction in (0.0, 0.5, 1.0) if longest > 0 else (0.0,):
        y = bottom - inner_h * fraction
        parts.append(
            f'<text class="axis-duration" x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}">'
            f"{escape(_duration(longest * fraction))}</text>"
        )
    dots: list[str] = []
    line: list[str] = []
    for i, point in enumerate(points):
        x = LEFT + slot * (i + 0.5)
        height = inner_h * max(point.duration, 0.0) / scale
        tip = (
            f"<title>{escape(labels[i])}: {_percent(point.pass_rate)} passed, "
            f"{escape(format_duration(point.duration))}</title>"
        )
        parts.append(
            f'<rect class="duration" x="{x - bar_w / 2:.1f}" y="{bottom - height:.1f}" '
            f'width="{bar_w:.1f}" height="{height:.1f}" fill="#d1d9e0">{tip}</rect>'
        )
        y = bottom - inner_h * min(max(point.pass_rate, 0.0), 1.0)
        line.append(f"{x:.1f},{y:.1f}")
        radius = 5 if point.current else 3.5
        dots.append(
            f'<circle class="pass-rate" cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="#1a7f37">'
            f"{tip}</circle>"
        )
        if i in shown:
            weight = ' font-weight="bold"' if point.current else ""
            parts.append(
                f'<text class="x-label" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle"'
                f"{weight}>{escape(labels[i])}</text>"
                # The value itself: 91% and 97% look alike on a 0-100% axis.
                f'<text class="value" x="{x:.1f}" y="{max(y - 9, TOP - 2):.1f}" '
                f'text-anchor="middle" fill="#1a7f37">{_percent(point.pass_rate)}</text>'
            )
    if len(line) > 1:
        parts.append(
            '<polyline class="pass-rate" fill="none" stroke="#1a7f37" stroke-width="2" '
            f'points="{" ".join(line)}"/>'
        )
    parts += dots
    cycles = "1 cycle" if len(points) == 1 else f"last {len(points)} cycles, oldest first"
    title = (
        f'<text x="{LEFT}" y="16">'
        f'<tspan fill="#1a7f37">● pass rate</tspan> (left axis) and '
        f'<tspan fill="#8c959f">▮ duration</tspan> (right axis), {cycles}</text>'
    )
    return (
        f'<svg id="history-chart" role="img" aria-label="pass rate and duration, {cycles}" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">'
        f"{title}{''.join(parts)}</svg>"
    )
