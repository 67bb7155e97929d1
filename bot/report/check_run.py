"""The GitHub check run: title, summary, text, conclusion and annotations."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from bot.report.annotations import MAX_ANNOTATIONS, build_annotations
from bot.report.budget import Plan, fit
from bot.report.headline import format_count, headline
from bot.report.markdown import safe_url, truncate_bytes, truncate_chars
from bot.report.model import CycleStatus, ReportModel
from bot.report.repo_paths import RepoFiles
from bot.report.report_body import headline_only, report_sections
from bot.report.sections import (
    GITHUB_STYLE,
    clusters_section,
    join_sections,
    passed_section,
)
from bot.report.status import render_status_description
from providers.base import GITHUB_LIMITS, CommitStatus, Conclusion, PlatformLimits, StatusState

_CONCLUSIONS = {
    CycleStatus.PASSED: Conclusion.SUCCESS,
    CycleStatus.FAILED: Conclusion.FAILURE,
    # Unknown outcome must not look green: block like a failure, but say why.
    CycleStatus.INFRA_ERROR: Conclusion.FAILURE,
    CycleStatus.NO_RESULTS: Conclusion.NEUTRAL,
    # GitHub's own word for it; GitLab and Azure DevOps map it in their providers.
    CycleStatus.TIMED_OUT: Conclusion.TIMED_OUT,
}
_DEFAULT_OUTPUT_BYTES = 65_535


def check_name(suite: str) -> str:
    """The check run / status context name for a suite."""
    return f"aac / {suite}"


def _annotation_note(shown: int, failing: int) -> str:
    if shown < MAX_ANNOTATIONS or failing <= shown:
        return ""
    return (
        f"_Annotations are capped at {format_count(shown)} ({format_count(failing)} failing "
        "tests); see the full report for the rest._"
    )


def _summary(model: ReportModel, plan: Plan, note: str) -> str:
    # The traces go to the text, which has room for them (``_text``).
    return join_sections(*report_sections(model, plan, GITHUB_STYLE, traces=False), note)


def _text(model: ReportModel, plan: Plan) -> str:
    traces = ""
    if model.clusters and plan.traces > 0:
        # The text carries the detail the summary leaves out: every shown cluster's trace.
        detail_plan = replace(
            plan,
            tests_per_cluster=0,
            list_items=0,
            explanations=False,
            summary_bytes=0,
            message_lines=0,  # the summary shows messages; the text adds the traces
        )
        traces = clusters_section(model, detail_plan, GITHUB_STYLE, traces=True)
        traces = traces.replace("#### Failures by root cause", "#### Traces by root cause", 1)
    return join_sections(traces, passed_section(model, plan, GITHUB_STYLE))


def _minimal(model: ReportModel) -> str:
    return headline_only(model, "Full report")


def render_check_run(
    model: ReportModel,
    limits: PlatformLimits = GITHUB_LIMITS,
    files: Collection[str] | None = None,
) -> CommitStatus:
    """A completed check run for the cycle, within GitHub's output limits.

    ``files``, the repository's paths at the commit, puts annotations only on files that exist
    there; None falls back to cleaning paths up by heuristics.
    """
    repo_files = RepoFiles(files) if files is not None else None
    annotations, failing = build_annotations(model, limits, MAX_ANNOTATIONS, repo_files)
    note = _annotation_note(len(annotations), failing)
    summary_budget = limits.check_summary_bytes or _DEFAULT_OUTPUT_BYTES
    text_budget = limits.check_text_bytes or _DEFAULT_OUTPUT_BYTES
    summary = fit(lambda p: _summary(model, p, note), summary_budget, lambda: _minimal(model))
    text = fit(lambda p: _text(model, p), text_budget, lambda: "")
    title_chars = limits.check_title_chars or 255
    title = headline(model, icon=False)
    return CommitStatus(
        state=StatusState.COMPLETED,
        name=check_name(model.identity.suite),
        description=render_status_description(model, limits.status_description_chars),
        conclusion=_CONCLUSIONS[model.status],
        title=truncate_bytes(truncate_chars(" ".join(title.split()), title_chars), title_chars),
        summary=summary,
        text=text or None,
        annotations=annotations,
        details_url=safe_url(model.identity.report_url),
        external_id=model.identity.cycle_id,
    )
