"""A run killed at its time limit reads as a timeout everywhere, never as a plain failure."""

from __future__ import annotations

from report_scenarios import timed_out, timed_out_empty

from bot.report.check_run import render_check_run
from bot.report.comment import Dialect, render_comment
from bot.report.headline import headline
from bot.report.model import CycleStatus, TimedOut, Totals, cycle_status
from bot.report.page import render_page
from bot.report.status import render_status_description
from bot.report.timeout import timeout_note, timeout_title
from providers.base import AZURE_LIMITS, GITLAB_LIMITS, Conclusion


def test_a_timeout_wins_over_what_the_counts_say() -> None:
    # Green results of a run cut short say nothing of the tests it never reached.
    assert cycle_status(Totals(total=3, passed=3), False, timed_out=True) is CycleStatus.TIMED_OUT
    assert cycle_status(Totals(), True, timed_out=True) is CycleStatus.TIMED_OUT
    assert cycle_status(Totals(total=3, passed=3), False) is CycleStatus.PASSED


def test_the_title_names_the_limit_when_it_is_known() -> None:
    assert timeout_title(TimedOut(seconds=600)) == "Timed out after 600 s"
    assert timeout_title(TimedOut(seconds=7200)) == "Timed out after 7,200 s"
    assert timeout_title(TimedOut()) == "Timed out"


def test_the_note_says_who_killed_it_and_what_was_kept() -> None:
    node = timeout_note(TimedOut(seconds=600, by_node=True), 13)
    assert node.startswith("The testing node killed the command at the suite's timeout (600 s).")
    assert "The 13 test results uploaded before the kill were kept" in node
    ci = timeout_note(TimedOut(), 0)
    assert ci.startswith("The pipeline reported that the run was stopped at its timeout.")
    assert "No test results were uploaded before the kill" in ci
    assert "1 test result uploaded" in timeout_note(TimedOut(by_node=True), 1)


def test_the_check_run_concludes_timed_out_with_the_limit_as_its_title() -> None:
    check = render_check_run(timed_out())
    assert check.conclusion is Conclusion.TIMED_OUT
    assert check.title == "Timed out after 600 s · 1 failed (1 new in this PR), 12 passed · abc1234"
    assert check.summary is not None
    assert "The testing node killed the command at the suite's timeout (600 s)" in check.summary
    # The results uploaded before the kill are still reported, with their annotation.
    assert "AssertionError" in check.summary
    assert [a.path for a in check.annotations] == ["tests/test_cart.py"]


def test_statuses_and_comments_say_timed_out_not_no_results() -> None:
    for model in (timed_out(), timed_out_empty()):
        texts = [
            headline(model),
            render_status_description(model, GITLAB_LIMITS.status_description_chars),
            render_status_description(model, AZURE_LIMITS.status_description_chars),
            render_status_description(model, 20),
            *(render_comment(model, dialect).body for dialect in Dialect),
        ]
        for text in texts:
            assert "Timed out" in text
            assert "No test results reported" not in text
            assert "Infrastructure error" not in text
    assert render_check_run(timed_out_empty()).conclusion is Conclusion.TIMED_OUT
    assert render_check_run(timed_out_empty()).title == "Timed out · abc1234"


def test_the_page_shows_the_timeout_and_the_results_before_it() -> None:
    page = render_page(timed_out(), chart=[], recent={})
    assert "<h1>Timed out after 600 s · 1 failed (1 new in this PR), 12 passed" in page
    assert '<div class="card" id="timed-out"><b>Timed out after 600 s.</b>' in page
    assert "test_total_rounding" in page
    assert "Infrastructure error" not in page


def test_tests_the_kill_cut_off_are_not_called_removed() -> None:
    model = timed_out()
    assert model.deltas is not None
    assert model.deltas.removed  # absent here, present on base
    body = render_comment(model).body
    assert "Removed tests" not in body
    assert "- Duration" not in body
