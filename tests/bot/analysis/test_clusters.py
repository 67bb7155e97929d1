"""Clustering failing tests by signature."""

from __future__ import annotations

from bot.analysis.clusters import cluster_failures, flaky_results, is_flaky_result
from bot.results.model import TestCaseResult, TestStatus


def _r(name: str, status: TestStatus, message: str = "", retries: int = 0) -> TestCaseResult:
    return TestCaseResult(name=name, status=status, message=message, retries=retries)


def test_clusters_by_root_cause_largest_first() -> None:
    results = [
        _r("a1", TestStatus.FAILED, "KeyError: 'x' 1"),
        _r("b1", TestStatus.ERRORED, "ConnectionError: refused on port 1"),
        _r("ok", TestStatus.PASSED),
        _r("b2", TestStatus.ERRORED, "ConnectionError: refused on port 2"),
        _r("b3", TestStatus.FAILED, "ConnectionError: refused on port 3"),
        _r("skip", TestStatus.SKIPPED, "ConnectionError: refused on port 3"),
    ]
    clusters = cluster_failures(results)
    assert [[t.name for t in c.tests] for c in clusters] == [["b1", "b2", "b3"], ["a1"]]
    assert clusters[0].exception_type == "ConnectionError"
    assert clusters[0].message_pattern == "refused on port <n>"
    assert clusters[0].representative.name == "b1"
    assert len(clusters[0].signature) == 16


def test_ties_keep_first_appearance() -> None:
    results = [_r(f"t{i}", TestStatus.FAILED, f"Error{i}: x") for i in range(5)]
    assert [c.tests[0].name for c in cluster_failures(results)] == [f"t{i}" for i in range(5)]


def test_flaky_tests_are_not_clustered_but_listed() -> None:
    results = [
        _r("f", TestStatus.FLAKY, "E: x"),
        _r("p", TestStatus.PASSED, retries=1),
        _r("q", TestStatus.PASSED),
        _r("x", TestStatus.FAILED, "E: x", retries=2),  # failed every retry: a failure
    ]
    assert [t.name for c in cluster_failures(results) for t in c.tests] == ["x"]
    assert [r.name for r in flaky_results(results)] == ["f", "p"]
    assert not is_flaky_result(results[3])


def test_no_failures_no_clusters() -> None:
    assert cluster_failures([]) == []
    assert cluster_failures([_r("p", TestStatus.PASSED)]) == []


def test_accepts_a_generator() -> None:
    clusters = cluster_failures(_r(f"t{i}", TestStatus.FAILED, "E: same") for i in range(3))
    assert len(clusters) == 1
    assert len(clusters[0].tests) == 3


def test_ten_thousand_failures_cluster_into_few() -> None:
    # Speed is measured outside the test suite (see the report); this checks correctness
    # at scale: 10,000 failures over 25 causes give 25 clusters of 400.
    trace = (
        'Traceback (most recent call last):\n  File "/w/app/x.py", line {n}, in f{k}\nE{k}: boom'
    )
    results = [
        TestCaseResult(
            name=f"test_{i}",
            status=TestStatus.FAILED,
            message=f"case {i} failed with code {i % 25}",
            failure_type=f"E{i % 25}",
            stack_trace=trace.format(n=i, k=i % 25),
        )
        for i in range(10_000)
    ]
    clusters = cluster_failures(results)
    assert len(clusters) == 25
    assert {len(c.tests) for c in clusters} == {400}


def test_a_cluster_shows_its_first_tests_real_message_and_own_frames() -> None:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/builds/acme/shop/tests/test_cart.py", line 9, in test_a\n'
        '  File "/builds/acme/shop/shop/cart.py", line 88, in total\n'
        '  File "/usr/lib/python3.12/decimal.py", line 12, in __add__\n'
        "decimal.InvalidOperation: boom\n"
    )
    results = [
        TestCaseResult(
            name=n, status=TestStatus.FAILED, message=m, stack_trace=trace.replace("test_a", n)
        )
        for n, m in (
            ("test_a", "ValueError: 10 != 11\nsecond line"),
            ("test_b", "ValueError: 3 != 4"),
        )
    ]
    [cluster] = cluster_failures(results)
    assert cluster.message_pattern == "<n> != <n>"  # internal
    assert cluster.example_message == "10 != 11\nsecond line"
    assert cluster.own_frames == ("cart.py:total",)
