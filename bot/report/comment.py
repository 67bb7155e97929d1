"""The sticky PR/MR comment, per markup dialect, within the platform's body limit."""

from __future__ import annotations

from enum import StrEnum

from bot.report.budget import Plan, fit
from bot.report.model import ReportModel
from bot.report.report_body import headline_only, report_sections
from bot.report.sections import (
    AZURE_STYLE,
    GITHUB_STYLE,
    GITLAB_STYLE,
    Style,
    join_sections,
)
from providers.base import GITHUB_LIMITS, CommentBody, PlatformLimits, comment_marker


class Dialect(StrEnum):
    """Markdown flavours we render for."""

    GITHUB = "github"
    GITLAB = "gitlab"
    AZURE = "azure"


_STYLES: dict[Dialect, Style] = {
    Dialect.GITHUB: GITHUB_STYLE,
    Dialect.GITLAB: GITLAB_STYLE,
    Dialect.AZURE: AZURE_STYLE,
}


def _body(model: ReportModel, plan: Plan, style: Style) -> str:
    # No list of passed tests: a PR author reads what needs them; the report page lists all.
    return join_sections(*report_sections(model, plan, style, traces=True))


def _minimal(model: ReportModel) -> str:
    return headline_only(model, "full report", lead="Details did not fit here: ")


def render_comment(
    model: ReportModel,
    dialect: Dialect | str = Dialect.GITHUB,
    limits: PlatformLimits = GITHUB_LIMITS,
) -> CommentBody:
    """The comment body for ``dialect``, starting with the suite's hidden marker."""
    style = _STYLES[Dialect(dialect)]
    marker = comment_marker(model.identity.suite) + "\n"
    # Characters and bytes alike: a body within the limit in bytes is within it in chars.
    budget = limits.comment_chars - len(marker.encode("utf-8"))
    body = fit(lambda plan: _body(model, plan, style), budget, lambda: _minimal(model))
    return CommentBody(suite=model.identity.suite, body=marker + body)
