"""The full report page of a cycle: self-contained HTML (inline CSS and SVG, no scripts,
no external assets), rendered from the report model. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from bot.analysis.model import Verdict
from bot.analysis.signature import example_message
from bot.report.chart import SuitePoint, history_chart
from bot.report.headline import headline
from bot.report.markdown import clean, safe_url
from bot.report.model import CycleIdentity, ReportCluster, ReportModel, ReportTest
from bot.report.sections import first_line
from bot.report.timeout import timeout_note, timeout_title
from bot.results.model import TestStatus

MAX_FAILURES_ON_PAGE = 2000
MAX_PASSED_ON_PAGE = 20_000


@dataclass(frozen=True, slots=True)
class Successor:
    """The cycle that superseded this one: a newer commit's run of the same suite, or a
    re-run at the same commit (its next ``run_attempt``)."""

    cycle_id: str
    sha: str
    url: str  # its report page
    run_attempt: int = 1


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1040px;margin:0 auto;padding:24px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.meta{color:#59636e} .card{background:#fff;border:1px solid #d1d9e0;border-radius:6px;
padding:12px 16px;margin:8px 0} .totals span{margin-right:16px}
.verdict{font-size:12px;padding:1px 6px;border-radius:10px;background:#eef;margin-left:6px}
.verdict.new{background:#ffebe9;color:#82071e} .verdict.flaky{background:#fff8c5}
.verdict.also_on_base{background:#ddf4ff} .verdict.unknown{background:#eaeef2}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:360px;font-size:12px}
pre.message{margin:6px 0;border-left:3px solid #cf222e}
.ai{border-left:4px solid #8250df} .ai p{white-space:pre-line}
svg text{font-size:11px;fill:#59636e}
.legend dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:8px 0 0}
.legend dd{margin:0} .legend .verdict{margin-left:0}
.frames{font-family:ui-monospace,monospace;font-size:12px}
.test{margin:10px 0 0;padding-top:8px;border-top:1px solid #eaeef2}
details summary{cursor:pointer} .superseded{border-left:4px solid #9a6700}
"""


# Badge label and what it means, in the order the legend lists them.
BADGES: dict[Verdict, tuple[str, str]] = {
    Verdict.NEW: (
        "new",
        "fails here but passed on the base branch's latest cycle: likely broken by this change",
    ),
    Verdict.ALSO_ON_BASE: (
        "also on base",
        "fails on the base branch too: it was broken before this change",
    ),
    Verdict.FLAKY: (
        "flaky",
        "passed on a retry, passed and failed on the same commit, or flips between pass and "
        "fail in recent runs; the flip rate is how often its outcome changed from one recent "
        "run to the next",
    ),
    Verdict.UNKNOWN: (
        "unknown",
        "no cycle of the base branch to compare with yet, so it cannot be told new or old",
    ),
}


def _badge(test: ReportTest) -> str:
    label, meaning = BADGES[test.verdict]
    if test.verdict is Verdict.FLAKY and test.flip_rate is not None:
        label += f" · {test.flip_rate:.0%} flip rate"
    reason = f" ({test.reason})" if test.reason else ""
    return (
        f'<span class="verdict {escape(test.verdict.value)}" title="{escape(meaning + reason)}">'
        f"{escape(label)}</span>"
    )


def _legend() -> str:
    rows = "".join(
        f'<dt><span class="verdict {v.value}">{escape(label)}</span></dt><dd>{escape(text)}</dd>'
        for v, (label, text) in BADGES.items()
    )
    return (
        '<details class="card legend" id="legend" open><summary>What the badges mean</summary>'
        f"<dl>{rows}</dl></details>"
    )


def _pre(title: str, text: str | None) -> str:
    if not text:
        return ""
    return f"<details><summary>{escape(title)}</summary><pre>{escape(clean(text))}</pre></details>"


def _message(text: str | None) -> str:
    # <pre> keeps the line breaks of assertion diffs; escape() keeps it inert.
    if not text or not text.strip():
        return ""
    return f'<pre class="message">{escape(clean(text).strip(chr(10)))}</pre>'


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _summary(markdown: str) -> str:
    """The model's markdown as paragraphs and code blocks, all text escaped: enough to read,
    without a markdown renderer on a page whose text others wrote."""
    out: list[str] = []
    paragraph: list[str] = []
    code: list[str] | None = None
    closer = ""

    def flush() -> None:
        if "".join(paragraph).strip():
            out.append(f"<p>{escape(chr(10).join(paragraph).strip())}</p>")
        paragraph.clear()

    for line in clean(markdown).split("\n"):
        fence = _FENCE.match(line)
        if code is not None:
            if fence and fence.group(1)[0] == closer[0] and len(fence.group(1)) >= len(closer):
                out.append(f"<pre>{escape(chr(10).join(code))}</pre>")
                code = None
            else:
                code.append(line)
        elif fence:
            flush()
            code, closer = [], fence.group(1)
        elif line.strip():
            paragraph.append(line)
        else:
            flush()
    flush()
    if code is not None:
        out.append(f"<pre>{escape(chr(10).join(code))}</pre>")
    return "".join(out)


def _history_line(statuses: Sequence[TestStatus] | None) -> str:
    if not statuses:
        return ""
    marks = "".join("✓" if s in (TestStatus.PASSED, TestStatus.FLAKY) else "✗" for s in statuses)
    return f'<div class="meta">recent runs, oldest first: {escape(marks)}</div>'


def _a(text: str, url: str | None) -> str:
    target = safe_url(url)
    if target is None:
        return escape(text)
    return f'<a href="{escape(target)}" rel="noreferrer">{escape(text)}</a>'


def _meta(model: ReportModel) -> str:
    ident = model.identity
    web = ident.web
    bits = [escape(ident.repository), f"suite {escape(ident.suite)}"]
    bits.append(f"commit {_a(ident.short_sha, web.commit)}")
    if ident.pr:
        bits.append(_a(web.change_label, web.change))
    pipeline = web.pipeline or ident.pipeline_url
    if pipeline:
        bits.append(_a("pipeline", pipeline))
    return f'<div class="meta" id="links">{" · ".join(bits)}</div>'


def _cluster(
    cluster: ReportCluster, recent: Mapping[str, Sequence[TestStatus]], room: int
) -> tuple[str, int]:
    """One root cause as a card, with at most ``room`` of its tests; and how many it showed."""
    message = first_line(cluster.example_message)
    head = f"<b>{escape(cluster.exception_type or 'Failure')}</b>"
    head += f": {escape(clean(message))}" if message else ""
    head += f" · {len(cluster.tests):,} test{'s' if len(cluster.tests) != 1 else ''}"
    parts = ['<div class="card cluster">', f'<div class="cluster-title">{head}</div>']
    if cluster.own_frames:
        frames = " ← ".join(escape(clean(f)) for f in cluster.own_frames)
        parts.append(f'<div class="meta frames">at {frames}</div>')
    if cluster.explanation is not None:
        e = cluster.explanation
        parts.append(
            f'<div class="ai"><p><b>Likely cause:</b> {escape(e.likely_cause)}</p>'
            f"<p><b>Suggested fix:</b> {escape(e.suggested_fix)}</p></div>"
        )
    shown = 0
    for test in cluster.tests[: max(room, 0)]:
        shown += 1
        r = test.result
        where = f" — {escape(r.file)}:{r.line}" if r.file and r.line else ""
        parts.append(
            f'<div class="test"><code>{escape(r.test_id)}</code>{_badge(test)}{where}'
            # No message attribute (go test, some runners): what the trace says instead.
            + _message(r.message or example_message(r))
            + _pre("stack trace", r.stack_trace)
            + _pre("stdout", r.stdout_tail)
            + _pre("stderr", r.stderr_tail)
            + _history_line(recent.get(r.test_id))
            + "</div>"
        )
    parts.append("</div>")
    return "".join(parts), shown


def _passed(model: ReportModel) -> str:
    ids = model.passed_tests
    if not ids:
        return ""
    items = "".join(f"<li><code>{escape(t)}</code></li>" for t in ids[:MAX_PASSED_ON_PAGE])
    more = len(ids) - MAX_PASSED_ON_PAGE
    tail = f'<p class="meta">{more:,} more not shown.</p>' if more > 0 else ""
    return (
        f'<h2>Passed ({len(ids):,})</h2><details id="passed"><summary>Show the passed tests'
        f"</summary><ul>{items}</ul>{tail}</details>"
    )


def _superseded_card(successor: Successor, ident: CycleIdentity) -> str:
    """Which cycle replaced this one, and why: a newer commit, or a re-run of this one."""
    link = f'<a href="{escape(successor.url)}">{escape(successor.cycle_id)}</a>'
    if successor.sha == ident.sha:
        # `/aac run`, `/aac rerun` and re-run pipelines: the same commit ran again.
        why = (
            f", re-run as attempt {successor.run_attempt} at the same commit. This report "
            f"describes attempt {ident.run_attempt} of commit {escape(ident.short_sha)}."
        )
    else:
        why = (
            f" for a newer commit, {escape(successor.sha[:7])}. This report describes "
            f"commit {escape(ident.short_sha)}."
        )
    return (
        '<div class="card superseded" id="superseded-by"><b>Superseded</b> by cycle '
        f"{link}{why}</div>"
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
        _meta(model),
        '<div class="card totals">'
        + "".join(
            f"<span><b>{getattr(totals, name):,}</b> {name}</span>"
            for name in ("total", "passed", "failed", "errored", "skipped", "flaky")
        )
        + "</div>",
    ]
    if superseded_by is not None:
        parts.append(_superseded_card(superseded_by, ident))
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
    if model.timed_out is not None:
        title = timeout_title(model.timed_out)
        note = timeout_note(model.timed_out, totals.total)
        parts.append(
            f'<div class="card" id="timed-out"><b>{escape(title)}.</b> {escape(note)}</div>'
        )
    if model.llm is not None:
        parts.append(f'<div class="card ai"><b>AI analysis</b>{_summary(model.llm.summary)}</div>')
    elif model.llm_note:
        parts.append(f'<div class="meta">{escape(model.llm_note)}</div>')
    parts.append("<h2>History</h2>" + history_chart(chart))
    if model.clusters or model.flaky:
        parts.append(_legend())
    shown = 0
    if model.clusters:
        parts.append(f"<h2>Failures by root cause ({len(model.clusters)})</h2>")
    for cluster in model.clusters:
        card, count = _cluster(cluster, recent, MAX_FAILURES_ON_PAGE - shown)
        parts.append(card)
        shown += count
    failing = sum(len(c.tests) for c in model.clusters)
    if shown < failing:
        parts.append(f'<p class="meta">{failing - shown:,} more failures not shown.</p>')
    if model.flaky:
        parts.append(f"<h2>Flaky: passed on retry ({len(model.flaky)})</h2><ul>")
        parts += [
            f"<li><code>{escape(t.result.test_id)}</code>{_badge(t)}</li>" for t in model.flaky
        ]
        parts.append("</ul>")
    parts.append(_passed(model))
    parts.append("</main></body></html>")
    return "".join(parts)
