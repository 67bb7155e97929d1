"""Verdicts per failing test and deltas against the base branch, from history as plain data.

Rules for a failing test, first match wins:
1. it passed in another cycle on the same sha, or passed on a retry here -> FLAKY;
2. it also fails (or errors) on the base branch's latest cycle -> ALSO_ON_BASE;
3. its recent runs on any branch flip pass/fail at least ``MIN_FLIPS`` times -> FLAKY;
4. there is no base cycle to compare with -> UNKNOWN;
5. otherwise (passed, skipped or absent on base) -> NEW.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from bot.analysis.clusters import FAILING, is_flaky_result
from bot.analysis.model import Verdict
from bot.results.model import TestCaseResult, TestStatus

# Two flips (pass -> fail -> pass) is the least that is not just "broke, then got fixed".
MIN_FLIPS = 2
REASON_ADDED = "added in this PR"
_PASSING = frozenset({TestStatus.PASSED, TestStatus.FLAKY})


@dataclass(frozen=True, slots=True)
class BaseCycle:
    """The base branch's latest completed cycle for the same suite."""

    statuses: Mapping[str, TestStatus]  # test_id -> status
    sha: str | None = None
    duration: float | None = None  # seconds


@dataclass(frozen=True, slots=True)
class TestHistory:
    """Everything verdicts need from storage; all parts may be empty (first run)."""

    __test__ = False

    base: BaseCycle | None = None
    # test_id -> statuses of the same test in OTHER cycles on the same sha
    same_sha: Mapping[str, Sequence[TestStatus]] = field(default_factory=dict)
    # test_id -> statuses of the test's recent runs on any branch, oldest first
    recent: Mapping[str, Sequence[TestStatus]] = field(default_factory=dict)

    @property
    def has_history(self) -> bool:
        """True when there is anything at all to compare with."""
        return self.base is not None or bool(self.same_sha) or bool(self.recent)


@dataclass(frozen=True, slots=True)
class TestVerdict:
    """The verdict on one test, with a short human reason and the flip rate when known."""

    __test__ = False

    test_id: str
    verdict: Verdict
    reason: str
    flip_rate: float | None = None  # flips / (runs - 1) over recent runs


@dataclass(frozen=True, slots=True)
class Deltas:
    """What changed against the base branch's latest cycle."""

    has_history: bool  # False: first run, nothing to compare with
    base_sha: str | None = None
    counts: Mapping[TestStatus, int] = field(default_factory=dict)  # here minus base
    added: tuple[str, ...] = ()  # test ids present here, absent on base
    removed: tuple[str, ...] = ()  # present on base, absent here
    newly_skipped: tuple[str, ...] = ()  # skipped here, ran on base
    fixed: tuple[str, ...] = ()  # failed on base, passes here
    duration_delta: float | None = None  # seconds, here minus base


def flip_stats(statuses: Sequence[TestStatus]) -> tuple[int, float | None]:
    """Pass/fail flips over a run sequence and the flip rate (None under two outcomes)."""
    outcomes = [s in _PASSING for s in statuses if s in _PASSING or s in FAILING]
    if len(outcomes) < 2:
        return 0, None
    flips = sum(1 for a, b in pairwise(outcomes) if a != b)
    return flips, flips / (len(outcomes) - 1)


def verdict_for(result: TestCaseResult, history: TestHistory) -> TestVerdict:
    """Decide the verdict on one failing or flaky test (rules in the module docstring)."""
    test_id = result.test_id
    flips, rate = flip_stats(history.recent.get(test_id, ()))
    if is_flaky_result(result):
        return TestVerdict(test_id, Verdict.FLAKY, "passed on retry", rate)
    if any(s in _PASSING for s in history.same_sha.get(test_id, ())):
        return TestVerdict(test_id, Verdict.FLAKY, "passed in another run of this commit", rate)
    base_status = history.base.statuses.get(test_id) if history.base is not None else None
    if base_status in FAILING:
        return TestVerdict(test_id, Verdict.ALSO_ON_BASE, "also fails on the base branch", rate)
    if base_status is TestStatus.FLAKY:
        return TestVerdict(test_id, Verdict.FLAKY, "flaky on the base branch", rate)
    if flips >= MIN_FLIPS:
        return TestVerdict(
            test_id, Verdict.FLAKY, "flips between pass and fail in recent runs", rate
        )
    if history.base is None:
        return TestVerdict(test_id, Verdict.UNKNOWN, "no base branch history", rate)
    if base_status is None:
        return TestVerdict(test_id, Verdict.NEW, REASON_ADDED, rate)
    return TestVerdict(test_id, Verdict.NEW, f"{base_status.value} on the base branch", rate)


def decide_verdicts(
    results: Iterable[TestCaseResult], history: TestHistory
) -> dict[str, TestVerdict]:
    """Verdicts keyed by test id for every failing or flaky test in ``results``."""
    verdicts: dict[str, TestVerdict] = {}
    for result in results:
        if result.status in FAILING or is_flaky_result(result):
            verdicts[result.test_id] = verdict_for(result, history)
    return verdicts


def compute_deltas(
    results: Sequence[TestCaseResult], history: TestHistory, duration: float | None = None
) -> Deltas:
    """Counts, added/removed/newly skipped/fixed tests and duration change against base."""
    base = history.base
    if base is None:
        return Deltas(has_history=False)
    here = {r.test_id: r.status for r in results}
    now, before = Counter(here.values()), Counter(base.statuses.values())
    counts = {status: now[status] - before[status] for status in TestStatus}
    added = tuple(t for t in here if t not in base.statuses)
    removed = tuple(t for t in base.statuses if t not in here)
    newly_skipped = tuple(
        t
        for t, s in here.items()
        if s is TestStatus.SKIPPED
        and base.statuses.get(t, TestStatus.SKIPPED) is not TestStatus.SKIPPED
    )
    fixed = tuple(t for t, s in here.items() if s in _PASSING and base.statuses.get(t) in FAILING)
    if duration is None:
        duration = sum(r.duration for r in results)
    delta = duration - base.duration if base.duration is not None else None
    return Deltas(True, base.sha, counts, added, removed, newly_skipped, fixed, delta)
