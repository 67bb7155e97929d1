"""Deterministic report models for golden files and tests (not a test module)."""

from __future__ import annotations

from collections.abc import Callable

from bot.analysis.clusters import cluster_failures
from bot.analysis.model import ClusterExplanation, LlmSummary
from bot.analysis.verdicts import BaseCycle, TestHistory, compute_deltas, decide_verdicts
from bot.report.model import LLM_UNAVAILABLE_NOTE, ReportModel, TimedOut, build_report
from bot.results.model import TestCaseResult, TestStatus
from providers.context import CiContext

SHA = "abc1234def5678abc1234def5678abc1234def56"
BASE_SHA = "0123456789abcdef0123456789abcdef01234567"


def _ctx() -> CiContext:
    return CiContext(
        source="github",
        repository="acme/shop",
        sha=SHA,
        pr=42,
        pipeline_url="https://ci.example.com/acme/shop/pipelines/981",
        suite="unit",
    )


def _passed(n: int, prefix: str = "test_ok") -> list[TestCaseResult]:
    return [
        TestCaseResult(name=f"{prefix}_{i}", classname="tests.test_misc", duration=0.5)
        for i in range(n)
    ]


def _py_trace(func: str, line: int, exc: str) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "/home/runner/work/shop/shop/tests/test_cart.py", line {line}, in {func}\n'
        "    total = cart.total()\n"
        '  File "/home/runner/work/shop/shop/shop/cart.py", line 88, in total\n'
        "    return sum(self._prices())\n"
        '  File "/usr/lib/python3.11/site-packages/decimal_ext/core.py", line 12, in add\n'
        "    raise err\n"
        f"{exc}"
    )


def _failure(
    name: str, exc_type: str, message: str, trace: str, status: TestStatus = TestStatus.FAILED
) -> TestCaseResult:
    return TestCaseResult(
        name=name,
        classname="tests.test_cart",
        file="tests/test_cart.py",
        status=status,
        duration=1.25,
        message=message,
        failure_type=exc_type,
        stack_trace=trace,
    )


def _history(results: list[TestCaseResult], base_failing: set[str]) -> TestHistory:
    statuses = {
        r.test_id: (TestStatus.FAILED if r.test_id in base_failing else TestStatus.PASSED)
        for r in results
    }
    statuses["tests.test_old::test_removed"] = TestStatus.PASSED
    return TestHistory(base=BaseCycle(statuses, sha=BASE_SHA, duration=100.0))


def _build(
    results: list[TestCaseResult],
    history: TestHistory,
    llm: LlmSummary | None = None,
    **kwargs: object,
) -> ReportModel:
    clusters = cluster_failures(results)
    verdicts = decide_verdicts(results, history)
    deltas = compute_deltas(results, history)
    return build_report(
        _ctx(),
        results,
        clusters,
        verdicts,
        deltas,
        llm,
        report_url="https://aac.example.com/cycles/7",
        cycle_id="7",
        **kwargs,  # type: ignore[arg-type]
    )


def all_pass(passed: int = 120) -> ReportModel:
    results = _passed(passed)
    results.append(TestCaseResult(name="test_later", status=TestStatus.SKIPPED))
    return _build(results, _history(results, set()))


def one_failure() -> ReportModel:
    fail = _failure(
        "test_total_rounding",
        "AssertionError",
        # As pytest writes it: the assertion, then its explanation on indented lines.
        "assert Decimal('10.01') == Decimal('10.00')\n"
        " +  where Decimal('10.01') = total()\n"
        " +    where total = <shop.cart.Cart object at 0x7f3a2c>.total",
        _py_trace("test_total_rounding", 31, "AssertionError: assert 10.01 == 10.00"),
    )
    results = [*_passed(50), fail]
    return _build(results, _history(results, set()))


def many_failures() -> ReportModel:
    results = _passed(200)
    for i in range(12):
        results.append(
            _failure(
                f"test_checkout_{i}",
                "ConnectionError",
                f"connect to 10.0.0.{i}:5432 failed after {i + 1}.5s",
                _py_trace(f"test_checkout_{i}", 40 + i, "ConnectionError: refused"),
                TestStatus.ERRORED,
            )
        )
    for i in range(5):
        results.append(
            _failure(
                f"test_discount_{i}",
                "ValueError",
                f"discount {i * 10}% exceeds maximum <b>50%</b> for `vip` @admin",
                _py_trace(f"test_discount_{i}", 70 + i, "ValueError: too much"),
            )
        )
    results.append(
        _failure(
            "test_flaky_sometimes",
            "TimeoutError",
            "timed out after 30s",
            "TimeoutError: timed out",
        )
    )
    results.append(
        TestCaseResult(name="test_retry_ok", classname="tests.test_net", status=TestStatus.FLAKY)
    )
    base_failing = {f"tests.test_cart::test_discount_{i}" for i in range(2)}
    history = _history(results, base_failing)
    history = TestHistory(
        base=history.base,
        recent={
            "tests.test_cart::test_flaky_sometimes": [
                TestStatus.PASSED,
                TestStatus.FAILED,
                TestStatus.PASSED,
                TestStatus.FAILED,
            ]
        },
    )
    llm = LlmSummary(
        summary=(
            "The database is unreachable from the test runners, which breaks **checkout**.\n\n"
            "```\npsql: could not connect\n```\n\nDiscount validation is a separate bug."
        ),
        clusters=[],
        model="test-model",
    )
    model = _build(results, history, llm)
    sig = model.clusters[0].signature
    llm.clusters.append(
        ClusterExplanation(
            signature=sig,
            likely_cause="PostgreSQL service container did not start",
            evidence="connect to 10.0.0.0:5432 failed after 1.5s",
            suggested_fix="Add a health check to the service container",
            confidence=0.8,
        )
    )
    return _build(results, history, llm)


def thousands() -> ReportModel:
    results = _passed(1_000)
    for i in range(5_000):
        k = i % 25
        results.append(
            _failure(
                f"test_case_{i}",
                f"Error{k}",
                f"case {i} failed with code {k}",
                _py_trace(f"test_group_{k}", 10 + i, f"Error{k}: boom"),
            )
        )
    return _build(results, _history(results, set()))


def flaky_only() -> ReportModel:
    results = _passed(80)
    results.append(
        TestCaseResult(
            name="test_ws_reconnect", classname="tests.test_net", status=TestStatus.FLAKY
        )
    )
    results.append(
        TestCaseResult(name="test_dns", classname="tests.test_net", retries=2, duration=3.0)
    )
    return _build(results, _history(results, set()))


def infra_error() -> ReportModel:
    return _build([], TestHistory(), pipeline_failed=True, infra_reason="runner lost connection")


def no_history() -> ReportModel:
    results = [
        *_passed(30),
        _failure(
            "test_parse",
            "KeyError",
            "KeyError: 'sku'",
            _py_trace("test_parse", 12, "KeyError: 'sku'"),
        ),
    ]
    return _build(results, TestHistory(), llm_note=LLM_UNAVAILABLE_NOTE)


def timed_out() -> ReportModel:
    """A node killed the suite at 600 s after it had uploaded part of its results."""
    fail = _failure(
        "test_total_rounding",
        "AssertionError",
        "assert 10.01 == 10.00",
        _py_trace("test_total_rounding", 31, "AssertionError: assert 10.01 == 10.00"),
    )
    results = [*_passed(12), fail]
    return _build(results, _history(results, set()), timed_out=TimedOut(seconds=600, by_node=True))


def timed_out_empty() -> ReportModel:
    """A CI said its test step timed out, without a limit and before any result was written."""
    return _build([], TestHistory(), timed_out=TimedOut())


SCENARIOS: dict[str, Callable[[], ReportModel]] = {
    "all_pass": all_pass,
    "one_failure": one_failure,
    "many_failures": many_failures,
    "thousands": thousands,
    "flaky_only": flaky_only,
    "infra_error": infra_error,
    "no_history": no_history,
    "timed_out": timed_out,
    "timed_out_empty": timed_out_empty,
}
