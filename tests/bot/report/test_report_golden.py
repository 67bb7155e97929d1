"""Golden markdown for each scenario and target. Regenerate: AAC_REGEN_GOLDEN=1 pytest ..."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from report_scenarios import SCENARIOS

from bot.report.check_run import render_check_run
from bot.report.comment import Dialect, render_comment
from bot.report.model import ReportModel
from providers.base import AZURE_LIMITS, GITHUB_LIMITS, GITLAB_LIMITS

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("AAC_REGEN_GOLDEN") == "1"


def _render(model: ReportModel, target: str) -> str:
    if target == "check_summary":
        status = render_check_run(model)
        head = f"<!-- title: {status.title} | conclusion: {status.conclusion} -->\n"
        return head + (status.summary or "")
    if target == "github":
        return render_comment(model, Dialect.GITHUB, GITHUB_LIMITS).body
    if target == "gitlab":
        return render_comment(model, Dialect.GITLAB, GITLAB_LIMITS).body
    return render_comment(model, Dialect.AZURE, AZURE_LIMITS).body


@pytest.fixture(scope="module")
def models() -> dict[str, ReportModel]:
    return {name: build() for name, build in SCENARIOS.items()}


@pytest.mark.parametrize("target", ["check_summary", "github", "gitlab", "azure"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_golden(models: dict[str, ReportModel], scenario: str, target: str) -> None:
    rendered = _render(models[scenario], target)
    path = GOLDEN / f"{scenario}.{target}.md"
    if REGENERATE:
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"missing {path.name}; run with AAC_REGEN_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8")
