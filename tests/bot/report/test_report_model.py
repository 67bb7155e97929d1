"""Building the report model, the headline, the status description and the check run."""

from __future__ import annotations

import pytest
from report_scenarios import SCENARIOS, infra_error, many_failures, no_history, one_failure

from bot.analysis.model import Verdict
from bot.report.check_run import render_check_run
from bot.report.comment import Dialect, render_comment
from bot.report.headline import format_duration, headline
from bot.report.model import CycleStatus, Totals, build_report, cycle_status
from bot.report.status import render_status_description
from bot.results.model import TestCaseResult
from providers.base import AZURE_LIMITS, GITLAB_LIMITS, Conclusion, StatusState
from providers.context import CiContext


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "?"),
        (0.42, "0.4s"),
        (14.4, "14s"),
        (134, "2m 14s"),
        (3720, "1h 02m"),
        (-1, "?"),
        (float("inf"), "?"),  # a result file's time="inf" parses as infinity
        (float("nan"), "?"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_headline_counts_new_and_flaky() -> None:
    model = many_failures()
    assert headline(model) == (
        "❌ 6 failed, 12 errored (15 new in this PR, 1 likely flaky), 1 flaky, 200 passed"
        " · 2m 2s · abc1234"
    )


def test_no_history_headline_does_not_claim_new() -> None:
    assert "new" not in headline(no_history())
    assert not no_history().has_history


def test_infra_error_is_never_zero_passed() -> None:
    model = infra_error()
    assert model.status is CycleStatus.INFRA_ERROR
    for text in (
        headline(model),
        render_status_description(model, 140),
        render_comment(model).body,
    ):
        assert "0 passed" not in text
        assert "Infrastructure error" in text
    check = render_check_run(model)
    assert check.conclusion is Conclusion.FAILURE


def test_cycle_status() -> None:
    assert cycle_status(Totals(), pipeline_failed=True) is CycleStatus.INFRA_ERROR
    assert cycle_status(Totals(), pipeline_failed=False) is CycleStatus.NO_RESULTS
    assert cycle_status(Totals(total=2, passed=1, errored=1), False) is CycleStatus.FAILED
    assert cycle_status(Totals(total=1, passed=1), True) is CycleStatus.PASSED


def test_build_report_joins_verdicts_and_explanations() -> None:
    model = many_failures()
    assert model.totals.total == 219
    assert model.totals.errored == 12
    first = model.clusters[0]
    assert first.explanation is not None
    assert {t.verdict for t in model.clusters[1].tests} == {Verdict.NEW, Verdict.ALSO_ON_BASE}
    assert [t.result.name for t in model.flaky] == ["test_retry_ok"]
    assert model.identity.short_sha == "abc1234"


def test_build_report_defaults() -> None:
    ctx = CiContext(source="gitlab", repository="g/p", sha="f" * 40, suite="s")
    results = [TestCaseResult(name="a", duration=2.0), TestCaseResult(name="b", duration=3.0)]
    model = build_report(ctx, results, [], {}, None, None)
    assert model.duration == 5.0
    assert model.status is CycleStatus.PASSED
    assert model.passed_tests == ("a", "b")
    assert not model.has_history


def test_check_run_shape() -> None:
    check = render_check_run(one_failure())
    assert check.state is StatusState.COMPLETED
    assert check.conclusion is Conclusion.FAILURE
    assert check.name == "aac / unit"
    assert check.external_id == "7"
    assert check.details_url == "https://aac.example.com/cycles/7"
    assert len(check.annotations) == 1
    assert check.annotations[0].path == "tests/test_cart.py"
    assert check.annotations[0].start_line == 31


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_status_descriptions_fit(name: str) -> None:
    model = SCENARIOS[name]()
    for limit in (140, 255, 20):
        assert len(render_status_description(model, limit).encode()) <= limit


def test_status_description_drops_sha_then_duration() -> None:
    model = many_failures()
    full = render_status_description(model, 255)
    assert full.endswith("abc1234")
    assert "abc1234" not in render_status_description(model, len(full) - 1)


def test_azure_comment_has_no_details_and_few_traces() -> None:
    body = render_comment(many_failures(), Dialect.AZURE, AZURE_LIMITS).body
    assert "<details>" not in body
    assert body.count("Trace of") <= 3


def test_degrades_to_fit_a_small_budget() -> None:
    from providers.base import PlatformLimits

    tiny = PlatformLimits(comment_chars=1_500, status_description_chars=140)
    body = render_comment(many_failures(), Dialect.GITHUB, tiny).body
    assert len(body.encode()) <= 1_500
    assert body.startswith("<!-- aac:report:unit -->")
    big = render_comment(many_failures(), Dialect.GITLAB, GITLAB_LIMITS).body
    assert len(big) > len(body)
