"""The full report page of a cycle: self-contained HTML (inline CSS and SVG, no scripts,
no external assets), rendered from the report model. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from bot.report.headline import format_duration, headline
from bot.report.model import ReportModel, ReportTest
from bot.results.model import TestStatus

CHART_WIDTH, CHART_HEIGHT, PAD = 640, 160, 28
MAX_FAILURES_ON_PAGE = 2000


@dataclass(frozen=True, slots=True)
class SuitePoint:
    """One earlier cycle of the suite, for the history chart."""

    label: str  # short sha
    pass_rate: float  # 0..1
    duration: float  # seconds


@dataclass(frozen=True, slots=True)
class Successor:
    """The cycle a newer commit of the pull request started for the same suite."""

    cycle_id: str
    sha: str
    url: str  # its report page


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1040px;margin:0 auto;padding:24px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.meta{color:#59636e} .card{background:#fff;border:1px solid #d1d9e0;border-radius:6px;
padding:12px 16px;margin:8px 0} .totals span{margin-right:16px}
.verdict{font-size:12px;padding:1px 6px;border-radius:10px;background:#eef;margin-left:6px}
.verdict.new{background:#ffebe9;color:#82071e} .verdict.flaky{background:#fff8c5}
.verdict.also_on_base{background:#ddf4ff}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:360px;font-size:12px}
.ai{border-left:4px solid #8250df} svg text{font-size:11px;fill:#59636e}
details summary{cursor:pointer} .superseded{border-left:4px solid #9a6700}
"""


def _verdict(test: ReportTest) -> str:
    label = test.verdict.value.replace("_", " ")
    rate = f" ({test.flip_rate:.0%} flips)" if test.flip_rate else ""
    return f'<span class="verdict {escape(test.verdict.value)}">{escape(label)}{rate}</span>'


def _pre(title: str, text: str | None) -> str:
    if not text:
        return ""
    return f"<details><summary>{escape(title)}</summary><pre>{escape(text)}</pre></details>"


def _history_line(statuses: Sequence[TestStatus] | None) -> str:
    if not statuses:
        return ""
    marks = "".join("✓" if s in (TestStatus.PASSED, TestStatus.FLAKY) else "✗" for s in statuses)
    return f'<div class="meta">recent runs, oldest first: {escape(marks)}</div>'


def history_chart(points: Sequence[SuitePoint]) -> str:
    """An inline SVG of pass rate (line) and duration (bars) over recent cycles."""
    if not points:
        return '<p class="meta">No earlier cycles of this suite yet.</p>'
    inner_w, inner_h = CHART_WIDTH - 2 * PAD, CHART_HEIGHT - 2 * PAD
    step = inner_w / max(1, len(points) - 1) if len(points) > 1 else 0
    longest = max(p.duration for p in points) or 1.0
    bars, line = [], []
    for i, point in enumerate(points):
        x = PAD + (i * step if len(points) > 1 else inner_w / 2)
        height = inner_h * point.duration / longest
        bars.append(
            f'<rect class="duration" x="{x - 4:.1f}" y="{PAD + inner_h - height:.1f}" width="8" '
            f'height="{height:.1f}" fill="#d1d9e0"><title>{escape(point.label)}: '
            f"{escape(format_duration(point.duration))}</title></rect>"
        )
        line.append(f"{x:.1f},{PAD + inner_h * (1 - point.pass_rate):.1f}")
    return (
        f'<svg id="history-chart" role="img" aria-label="pass rate and duration" '
        f'width="{CHART_WIDTH}" height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}">'
        f'<text x="{PAD}" y="14">pass rate (line) and duration (bars), last {len(points)}'
        f" cycles</text>{''.join(bars)}"
        f'<polyline class="pass-rate" fill="none" stroke="#1a7f37" stroke-width="2" '
        f'points="{" ".join(line)}"/>'
        f'<text x="{PAD}" y="{CHART_HEIGHT - 6}">{escape(points[0].label)}</text>'
        f'<text x="{CHART_WIDTH - PAD - 50}" y="{CHART_HEIGHT - 6}">{escape(points[-1].label)}'
        "</text></svg>"
    )


def render_page(
    model: ReportModel,
    *,
    chart: Sequence[SuitePoint],
    recent: Mapping[str, Sequence[TestStatus]],
    superseded_by: Successor | None = None,
    publish_failures: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole HTML document."""
    ident = model.identity
    totals = model.totals
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        # An empty inline icon: otherwise the browser asks for /favicon.ico and logs a 404.
        "<link rel='icon' href='data:,'>",
        f"<title>{escape(ident.repository)} · {escape(ident.suite)} · {ident.short_sha}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>{escape(headline(model, icon=False))}</h1>",
        f'<div class="meta">{escape(ident.repository)} · suite {escape(ident.suite)} · commit '
        f"{escape(ident.sha)}" + (f" · PR #{ident.pr}" if ident.pr else "") + "</div>",
        '<div class="card totals">'
        + "".join(
            f"<span><b>{getattr(totals, name):,}</b> {name}</span>"
            for name in ("total", "passed", "failed", "errored", "skipped", "flaky")
        )
        + "</div>",
    ]
    if superseded_by is not None:
        parts.append(
            '<div class="card superseded" id="superseded-by"><b>Superseded</b> by cycle '
            f'<a href="{escape(superseded_by.url)}">{escape(superseded_by.cycle_id)}</a> '
            f"for a newer commit, {escape(superseded_by.sha[:7])}. This report describes "
            f"commit {escape(ident.short_sha)}.</div>"
        )
    if publish_failures:
        parts.append(
            '<div class="card superseded" id="publish-failures"><b>Not published.</b><ul>'
            + "".join(f"<li>{escape(what)}: {escape(why)}</li>" for what, why in publish_failures)
            + "</ul></div>"
        )
    if model.infra_reason:
        parts.append(
            f'<div class="card"><b>Infrastructure error.</b> {escape(model.infra_reason)}</div>'
        )
    if model.llm is not None:
        parts.append(
            f'<div class="card ai"><b>AI analysis</b><p>{escape(model.llm.summary)}</p></div>'
        )
    elif model.llm_note:
        parts.append(f'<div class="meta">{escape(model.llm_note)}</div>')
    parts.append("<h2>History</h2>" + history_chart(chart))
    shown = 0
    if model.clusters:
        parts.append(f"<h2>Failures by root cause ({len(model.clusters)})</h2>")
    for cluster in model.clusters:
        parts.append('<div class="card">')
        parts.append(
            f"<b>{escape(cluster.exception_type or 'Failure')}</b>: "
            f"{escape(cluster.message_pattern)} · {len(cluster.tests)} test(s)"
        )
        if cluster.explanation is not None:
            e = cluster.explanation
            parts.append(
                f'<div class="ai"><p><b>Likely cause:</b> {escape(e.likely_cause)}</p>'
                f"<p><b>Suggested fix:</b> {escape(e.suggested_fix)}</p></div>"
            )
        for test in cluster.tests:
            if shown >= MAX_FAILURES_ON_PAGE:
                break
            shown += 1
            r = test.result
            where = f" — {escape(r.file)}:{r.line}" if r.file and r.line else ""
            parts.append(
                f'<div class="test"><code>{escape(r.test_id)}</code>{_verdict(test)}{where}'
                f"<div>{escape(r.message or '')}</div>"
                + _pre("stack trace", r.stack_trace)
                + _pre("stdout", r.stdout_tail)
                + _pre("stderr", r.stderr_tail)
                + _history_line(recent.get(r.test_id))
                + "</div>"
            )
        parts.append("</div>")
    if model.flaky:
        parts.append(f"<h2>Flaky ({len(model.flaky)})</h2><ul>")
        parts += [f"<li><code>{escape(t.result.test_id)}</code></li>" for t in model.flaky]
        parts.append("</ul>")
    failing = sum(len(c.tests) for c in model.clusters)
    if shown < failing:
        parts.append(f'<p class="meta">{failing - shown:,} more failures not shown.</p>')
    parts.append("</main></body></html>")
    return "".join(parts)
