"""What the sticky comment and the check run's summary both show: the report's sections in
their order, and the headline-and-link fallback for when nothing more fits."""

from __future__ import annotations

from bot.report.budget import Plan
from bot.report.headline import headline
from bot.report.markdown import escape_inline, link
from bot.report.model import ReportModel
from bot.report.sections import (
    Style,
    clusters_section,
    deltas_section,
    flaky_section,
    header,
    llm_summary,
    notices,
)


def report_sections(model: ReportModel, plan: Plan, style: Style, *, traces: bool) -> list[str]:
    """The report's sections, in order, within ``plan``; ``traces`` shows each cluster's."""
    return [
        header(model),
        notices(model, plan),
        llm_summary(model, plan),
        clusters_section(model, plan, style, traces=traces),
        flaky_section(model, plan),
        deltas_section(model, plan),
    ]


def headline_only(model: ReportModel, label: str, *, lead: str = "") -> str:
    """The headline as a heading, then ``lead`` and a link named ``label`` to the full report
    (when the cycle has a report page)."""
    text = f"### {escape_inline(headline(model), 400)}"
    if model.identity.report_url:
        text += f"\n\n{lead}{link(label, model.identity.report_url)}"
    return text
