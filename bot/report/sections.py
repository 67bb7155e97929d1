"""Markdown sections shared by the comment and check-run renderers.

Every function takes the model, a ``Plan`` (how much to show) and a ``Style`` (what the
dialect supports) and returns markdown whose untrusted parts are already escaped.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.analysis.model import Verdict
from bot.analysis.verdicts import REASON_ADDED
from bot.report.annotations import locate
from bot.report.budget import Plan
from bot.report.headline import format_count, format_delta, headline
from bot.report.markdown import details, escape_inline, fence, link, safe_markdown, shorten_trace
from bot.report.model import (
    CycleStatus,
    ReportCluster,
    ReportModel,
    ReportTest,
    display_clusters,
)
from bot.report.timeout import timeout_note, timeout_title

NO_HISTORY_NOTE = (
    "ℹ️ No history for this suite on the base branch yet, so failures cannot be marked "
    "as new or pre-existing."
)


@dataclass(frozen=True, slots=True)
class Style:
    """What a markdown dialect supports."""

    details: bool  # <details> collapses (GitHub, GitLab); Azure DevOps has none
    max_traces: int  # traces shown at most, whatever the plan allows
    max_trace_lines: int


GITHUB_STYLE = Style(details=True, max_traces=50, max_trace_lines=80)
GITLAB_STYLE = Style(details=True, max_traces=50, max_trace_lines=80)
# Without <details> every trace is always open, so show few and short ones.
AZURE_STYLE = Style(details=False, max_traces=3, max_trace_lines=20)


def header(model: ReportModel) -> str:
    """The headline as a heading, then suite, PR and links."""
    ident = model.identity
    meta = [f"Suite {escape_inline(ident.suite, 100)}"]
    if ident.pipeline_url:
        meta.append(link("pipeline", ident.pipeline_url))
    if ident.report_url:
        meta.append(link("full report", ident.report_url))
    return f"### {escape_inline(headline(model), 400)}\n\n" + " · ".join(meta)


def notices(model: ReportModel, plan: Plan) -> str:
    """Infrastructure error, timeout, first-run and LLM-unavailable notes."""
    out: list[str] = []
    if model.status is CycleStatus.INFRA_ERROR:
        reason = (
            f" Reason: {escape_inline(model.infra_reason, plan.message_chars)}"
            if model.infra_reason
            else ""
        )
        out.append(
            "**No test results.** The pipeline failed before any test results were reported, "
            "so no test outcome is known; this is not a test failure." + reason
        )
    elif model.status is CycleStatus.NO_RESULTS:
        out.append("⚪ No test results were reported for this commit.")
    elif model.timed_out is not None:  # status TIMED_OUT
        title, note = (
            timeout_title(model.timed_out),
            timeout_note(model.timed_out, model.totals.total),
        )
        out.append(f"⏱️ **{title}.** {note}")
    # Only failures are marked new or pre-existing; a green run needs no such caveat.
    if not model.has_history and model.status is CycleStatus.FAILED:
        out.append(NO_HISTORY_NOTE)
    if model.llm is None and model.llm_note:
        out.append(f"_{escape_inline(model.llm_note, 300)}_")
    return "\n\n".join(out)


def llm_summary(model: ReportModel, plan: Plan) -> str:
    """The model's summary, as sanitised markdown, when there is one and room for it."""
    if model.llm is None or plan.summary_bytes <= 0 or not model.llm.summary.strip():
        return ""
    source = f" ({escape_inline(model.llm.model, 80)})" if model.llm.model else ""
    body = safe_markdown(model.llm.summary, plan.summary_bytes)
    return f"**AI summary**{source}\n\n{body}"


_BADGES = {
    Verdict.NEW: "🆕 new in this PR",
    Verdict.ALSO_ON_BASE: "also fails on base",
    Verdict.FLAKY: "🎲 likely flaky",
    Verdict.UNKNOWN: "",
}


def _location(test: ReportTest, repository: str) -> str:
    where = locate(test, repository)
    if where is None:
        return escape_inline(test.result.file, 160) if test.result.file else ""
    return escape_inline(f"{where[0]}:{where[1]}", 160)


def test_line(test: ReportTest, plan: Plan, repository: str) -> str:
    """``- test id — verdict · file:line``."""
    bits = [_BADGES[test.verdict]] if _BADGES[test.verdict] else []
    # The badge says it all for NEW and ALSO_ON_BASE, except that a test is new itself.
    if test.verdict is Verdict.FLAKY or test.reason == REASON_ADDED:
        bits.append(escape_inline(test.reason, 80))
    if test.flip_rate is not None and test.verdict is Verdict.FLAKY:
        bits.append(f"flip rate {test.flip_rate:.0%}")
    location = _location(test, repository)
    if location:
        bits.append(location)
    name = escape_inline(test.result.test_id, max(plan.message_chars, 80))
    return f"- {name}" + (f" — {' · '.join(bits)}" if bits else "")


def first_line(text: str) -> str:
    """The first non-blank line of ``text`` (a failure message's headline)."""
    return next((line for line in text.splitlines() if line.strip()), "")


def is_multiline(text: str) -> bool:
    """Whether ``text`` has more than one non-blank line, so a fence shows it better."""
    return sum(1 for line in text.splitlines() if line.strip()) > 1


def _cluster_title(index: int, cluster: ReportCluster, plan: Plan) -> str:
    kind = escape_inline(cluster.exception_type or "Failure", 120)
    # A real message from the tests; the masked signature pattern is internal.
    message = escape_inline(first_line(cluster.example_message), plan.message_chars)
    size = len(cluster.tests)
    count = f"{format_count(size)} test{'s' if size != 1 else ''}"
    if cluster.new_count:
        count += f", {format_count(cluster.new_count)} new"
    return f"**{index}\\. {kind}**" + (f": {message}" if message else "") + f" ({count})"


def _explanation(cluster: ReportCluster, plan: Plan) -> str:
    e = cluster.explanation
    if e is None or not plan.explanations:
        return ""
    confidence = f", {e.confidence:.0%} confidence" if 0 <= e.confidence <= 1 else ""
    lines = [f"> **Likely cause** (AI{confidence}): {escape_inline(e.likely_cause, 500)}"]
    if e.evidence.strip():
        lines.append(f"> **Evidence:** {escape_inline(e.evidence, 300)}")
    if e.suggested_fix.strip():
        lines.append(f"> **Suggested fix:** {escape_inline(e.suggested_fix, 500)}")
    return "  \n".join(lines)


def _message(cluster: ReportCluster, plan: Plan, style: Style) -> str:
    """A multi-line message (an assertion diff, expected/actual) in a fence, as printed."""
    text = cluster.example_message
    lines = min(plan.message_lines, style.max_trace_lines)
    if lines <= 0 or plan.message_bytes <= 0 or not is_multiline(text):
        return ""
    return fence(shorten_trace(text, lines, plan.message_bytes))


def _trace(cluster: ReportCluster, plan: Plan, style: Style, *, message_shown: bool) -> str:
    rep = cluster.tests[0].result
    text = rep.stack_trace or ("" if message_shown else rep.message) or ""
    if not text.strip():
        return ""
    lines = min(plan.trace_lines, style.max_trace_lines)
    block = fence(shorten_trace(text, lines, plan.trace_bytes))
    label = f"Trace of {rep.test_id}"
    if style.details:
        return details(label, block)
    return f"{escape_inline(label, 120)}:\n\n{block}"


def cluster_block(
    index: int, cluster: ReportCluster, plan: Plan, style: Style, repository: str, *, trace: bool
) -> str:
    """One root cause: title, frames, AI reading, tests, and optionally a trace."""
    parts = [_cluster_title(index, cluster, plan)]
    if cluster.own_frames:
        frames = " ← ".join(escape_inline(f, 120) for f in cluster.own_frames)
        parts[0] += f"  \nat {frames}"
    message = _message(cluster, plan, style)
    if message:
        parts.append(message)
    explanation = _explanation(cluster, plan)
    if explanation:
        parts.append(explanation)
    if plan.tests_per_cluster > 0:
        shown = cluster.tests[: plan.tests_per_cluster]
        items = [test_line(t, plan, repository) for t in shown]
        hidden = len(cluster.tests) - len(shown)
        if hidden > 0:
            items.append(f"- … and {format_count(hidden)} more")
        parts.append("\n".join(items))
    if trace:
        block = _trace(cluster, plan, style, message_shown=bool(message))
        if block:
            parts.append(block)
    return "\n\n".join(parts)


def clusters_section(model: ReportModel, plan: Plan, style: Style, *, traces: bool) -> str:
    """Failures grouped by root cause, the top ``plan.clusters`` of them."""
    if not model.clusters:
        return ""
    ordered = display_clusters(model)
    shown = ordered[: plan.clusters]
    n_traces = min(plan.traces, style.max_traces) if traces else 0
    title = f"#### Failures by root cause ({format_count(len(ordered))})"
    blocks = [
        cluster_block(i, c, plan, style, model.identity.repository, trace=i <= n_traces)
        for i, c in enumerate(shown, 1)
    ]
    hidden = len(ordered) - len(shown)
    if hidden > 0:
        more = f"… and {format_count(hidden)} more root cause{'s' if hidden != 1 else ''}"
        blocks.append(more + _see_full(model))
    return "\n\n".join([title, *blocks])


def _see_full(model: ReportModel) -> str:
    url = model.identity.report_url
    return f", see the {link('full report', url)}." if url else "."


def flaky_section(model: ReportModel, plan: Plan) -> str:
    """Tests that passed only on a retry within this run."""
    if not model.flaky:
        return ""
    title = f"#### Flaky: passed on retry ({format_count(len(model.flaky))})"
    if plan.list_items <= 0:
        return title
    items = [test_line(t, plan, model.identity.repository) for t in model.flaky[: plan.list_items]]
    hidden = len(model.flaky) - plan.list_items
    if hidden > 0:
        items.append(f"- … and {format_count(hidden)} more")
    return title + "\n\n" + "\n".join(items)


def _names(ids: tuple[str, ...], plan: Plan) -> str:
    shown = ", ".join(escape_inline(i, 120) for i in ids[: plan.list_items])
    hidden = len(ids) - plan.list_items
    return shown + (f" and {format_count(hidden)} more" if hidden > 0 else "")


def deltas_section(model: ReportModel, plan: Plan) -> str:
    """What changed against the base branch's latest cycle."""
    d = model.deltas
    if d is None or not d.has_history:
        return ""
    base = f" ({escape_inline(d.base_sha[:7])})" if d.base_sha else ""
    # A killed run's missing tests were not removed and its duration is the limit's: unsaid.
    cut_short = model.timed_out is not None
    lines: list[str] = []
    for label, ids in (
        ("Fixed by this PR", d.fixed),
        ("Added tests", d.added),
        ("Removed tests", () if cut_short else d.removed),
        ("Newly skipped", d.newly_skipped),
    ):
        if ids:
            names = f": {_names(ids, plan)}" if plan.list_items > 0 else ""
            lines.append(f"- {label} ({format_count(len(ids))}){names}")
    if d.duration_delta is not None and not cut_short:
        lines.append(f"- Duration {format_delta(d.duration_delta)}")
    if not lines:
        return ""
    return f"#### Compared with the base branch{base}\n\n" + "\n".join(lines)


def passed_section(model: ReportModel, plan: Plan, style: Style) -> str:
    """The passed tests, collapsed; only where <details> exists and the plan allows."""
    if not style.details or plan.passed_list <= 0 or not model.passed_tests:
        return ""
    shown = model.passed_tests[: plan.passed_list]
    items = [f"- {escape_inline(t, 200)}" for t in shown]
    hidden = len(model.passed_tests) - len(shown)
    if hidden > 0:
        items.append(f"- … and {format_count(hidden)} more")
    return details(f"Passed tests ({format_count(len(model.passed_tests))})", "\n".join(items))


def join_sections(*sections: str) -> str:
    """Join non-empty sections with blank lines."""
    return "\n\n".join(s for s in sections if s)
