"""The fallback both report bodies share: when no plan fits, the headline and a link."""

from __future__ import annotations

from dataclasses import replace

from bot.report.check_run import render_check_run
from bot.report.comment import render_comment
from providers.base import GITHUB_LIMITS, PlatformLimits, comment_marker
from tests.bot.report.report_scenarios import many_failures

HEADLINE = (
    "### ❌ 6 failed, 12 errored (15 new in this PR, 1 likely flaky), 1 flaky, 200 passed"
    " · 2m 2s · abc1234"
)
URL = "https://aac.example.com/cycles/7"


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def test_a_comment_too_small_for_any_plan_is_the_headline_and_a_link() -> None:
    model = many_failures()
    marker = comment_marker(model.identity.suite) + "\n"
    expected = f"{HEADLINE}\n\nDetails did not fit here: [full report]({URL})"
    limits = PlatformLimits(comment_chars=_bytes(marker + expected), status_description_chars=140)
    assert render_comment(model, "github", limits).body == marker + expected


def test_a_check_summary_too_small_for_any_plan_is_the_headline_and_a_link() -> None:
    expected = f"{HEADLINE}\n\n[Full report]({URL})"
    limits = replace(GITHUB_LIMITS, check_summary_bytes=_bytes(expected))
    assert render_check_run(many_failures(), limits).summary == expected


def test_the_fallback_links_nowhere_without_a_report_page() -> None:
    model = many_failures()
    model = replace(model, identity=replace(model.identity, report_url=None))
    limits = replace(GITHUB_LIMITS, check_summary_bytes=_bytes(HEADLINE) + 40)
    assert render_check_run(model, limits).summary == HEADLINE
