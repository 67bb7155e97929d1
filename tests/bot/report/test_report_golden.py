"""Golden markdown for each scenario and target. Regenerate: AAC_REGEN_GOLDEN=1 pytest ..."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from report_scenarios import SCENARIOS, all_pass

from bot.report.check_run import render_check_run
from bot.report.comment import Dialect, render_comment
from bot.report.model import ReportModel
from bot.report.page import render_page
from bot.report.sections import first_line
from bot.report.status import render_status_description
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


# What bot/analysis/signature.py masks run-specific details with, raw or HTML-escaped.
MASKS = re.compile(r"(?:<|&lt;)(?:n|duration|hex|uuid|ts|tmp|path|url)(?:>|&gt;)")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_masked_signature_is_never_shown(models: dict[str, ReportModel], scenario: str) -> None:
    model = models[scenario]
    shown = [_render(model, target) for target in ("check_summary", "github", "gitlab", "azure")]
    shown.append(render_check_run(model).text or "")
    shown.append(render_status_description(model, 140))
    shown.append(render_page(model, chart=[], recent={}))
    for text in shown:
        assert MASKS.search(text) is None, MASKS.search(text)
    for cluster in model.clusters:
        if cluster.example_message:
            # ...while each heading does show a real message from its tests.
            assert all(first_line(cluster.example_message)[:20] in t for t in shown[:3])


def test_a_green_comment_lists_no_passed_tests_however_many_there_are() -> None:
    few, many = all_pass(120), all_pass(20_000)
    for dialect, limits in ((Dialect.GITHUB, GITHUB_LIMITS), (Dialect.GITLAB, GITLAB_LIMITS)):
        small = render_comment(few, dialect, limits).body
        big = render_comment(many, dialect, limits).body
        assert "test_ok_0" not in big
        assert len(big.encode()) < 600
        assert big.count("\n") == small.count("\n")  # the same few lines, other numbers
