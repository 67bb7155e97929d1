"""Verdicts from history, and deltas against the base branch."""

from __future__ import annotations

import pytest

from bot.analysis.model import Verdict
from bot.analysis.verdicts import (
    REASON_ADDED,
    BaseCycle,
    TestHistory,
    compute_deltas,
    decide_verdicts,
    flip_stats,
    verdict_for,
)
from bot.results.model import TestCaseResult, TestStatus

P, F, E, S, FL = (
    TestStatus.PASSED,
    TestStatus.FAILED,
    TestStatus.ERRORED,
    TestStatus.SKIPPED,
    TestStatus.FLAKY,
)


def _r(
    name: str, status: TestStatus = F, duration: float = 1.0, retries: int = 0
) -> TestCaseResult:
    return TestCaseResult(name=name, status=status, duration=duration, retries=retries)


def _base(**statuses: TestStatus) -> BaseCycle:
    return BaseCycle(dict(statuses), sha="b" * 40, duration=10.0)


@pytest.mark.parametrize(
    ("history", "verdict"),
    [
        (TestHistory(base=_base(t=P)), Verdict.NEW),
        (TestHistory(base=_base(t=S)), Verdict.NEW),
        (TestHistory(base=_base(other=P)), Verdict.NEW),
        (TestHistory(base=_base(t=F)), Verdict.ALSO_ON_BASE),
        (TestHistory(base=_base(t=E)), Verdict.ALSO_ON_BASE),
        (TestHistory(base=_base(t=FL)), Verdict.FLAKY),
        (TestHistory(base=_base(t=P), same_sha={"t": [F, P]}), Verdict.FLAKY),
        (TestHistory(base=_base(t=F), same_sha={"t": [P]}), Verdict.FLAKY),
        (TestHistory(base=_base(t=P), recent={"t": [P, F, P, F]}), Verdict.FLAKY),
        # One flip is "broke then stayed broken", not flakiness.
        (TestHistory(base=_base(t=P), recent={"t": [P, P, F, F]}), Verdict.NEW),
        # Failing on base wins over flips: it is broken there, whatever it did before.
        (TestHistory(base=_base(t=F), recent={"t": [P, F, P, F]}), Verdict.ALSO_ON_BASE),
        (TestHistory(), Verdict.UNKNOWN),
        (TestHistory(recent={"t": [P, P]}), Verdict.UNKNOWN),
        (TestHistory(recent={"t": [P, F, P]}), Verdict.FLAKY),
    ],
)
def test_verdict_rules(history: TestHistory, verdict: Verdict) -> None:
    assert verdict_for(_r("t"), history).verdict is verdict


def test_passed_on_retry_is_flaky_with_flip_rate() -> None:
    v = verdict_for(_r("t", FL), TestHistory(recent={"t": [P, F, P, P, P]}))
    assert v.verdict is Verdict.FLAKY
    assert v.reason == "passed on retry"
    assert v.flip_rate == pytest.approx(0.5)


def test_absent_on_base_says_added() -> None:
    assert verdict_for(_r("t"), TestHistory(base=_base())).reason == REASON_ADDED


def test_flip_stats_ignore_skips() -> None:
    assert flip_stats([P, S, F, S, P]) == (2, 1.0)
    assert flip_stats([P]) == (0, None)
    assert flip_stats([]) == (0, None)


def test_decide_verdicts_only_for_failing_and_flaky() -> None:
    results = [_r("a", F), _r("b", P), _r("c", FL), _r("d", S), _r("e", E), _r("f", P, retries=1)]
    verdicts = decide_verdicts(results, TestHistory(base=_base(a=P, e=E)))
    assert {k: v.verdict for k, v in verdicts.items()} == {
        "a": Verdict.NEW,
        "c": Verdict.FLAKY,
        "e": Verdict.ALSO_ON_BASE,
        "f": Verdict.FLAKY,
    }


def test_deltas_against_base() -> None:
    results = [_r("kept", P, 2.0), _r("fixed", P, 3.0), _r("new", F, 4.0), _r("skipped", S, 0.0)]
    history = TestHistory(base=_base(kept=P, fixed=F, skipped=P, gone=P))
    d = compute_deltas(results, history)
    assert d.has_history
    assert d.base_sha == "b" * 40
    assert d.added == ("new",)
    assert d.removed == ("gone",)
    assert d.newly_skipped == ("skipped",)
    assert d.fixed == ("fixed",)
    assert d.duration_delta == pytest.approx(9.0 - 10.0)
    assert d.counts[P] == 2 - 3
    assert d.counts[F] == 1 - 1
    assert d.counts[S] == 1


def test_deltas_use_given_duration_and_tolerate_unknown_base_duration() -> None:
    history = TestHistory(base=BaseCycle({"a": P}))
    d = compute_deltas([_r("a", P)], history, duration=50.0)
    assert d.duration_delta is None
    history = TestHistory(base=BaseCycle({"a": P}, duration=20.0))
    assert compute_deltas([_r("a", P)], history, duration=50.0).duration_delta == 30.0


def test_first_run_has_no_history() -> None:
    history = TestHistory()
    assert not history.has_history
    d = compute_deltas([_r("a")], history)
    assert not d.has_history
    assert d.added == ()
    assert TestHistory(recent={"a": [P]}).has_history
