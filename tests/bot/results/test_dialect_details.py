"""Dialect details the golden samples do not pin down on their own."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.results.detect import TRX_NAMESPACE
from bot.results.model import TestStatus
from bot.results.parse import iter_results, parse_results
from bot.results.trx import parse_timespan

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = sorted(p for p in FIXTURES.iterdir() if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_iter_results_yields_what_parse_results_returns(sample: Path) -> None:
    data = sample.read_bytes()
    streamed = list(iter_results(io.BytesIO(data), filename=sample.name))
    assert streamed == parse_results(io.BytesIO(data), filename=sample.name).results


def _trx(body: str) -> bytes:
    return f'<TestRun name="run" xmlns="{TRX_NAMESPACE}">{body}</TestRun>'.encode()


DEFINITION = (
    '<TestDefinitions><UnitTest name="Sum" id="t1"><TestMethod codeBase="C:\\b\\Calc.Tests.dll"'
    ' className="Calc.Tests.MathTests, Calc.Tests, Version=1.0.0.0" name="Sum"/></UnitTest>'
    "</TestDefinitions>"
)


def test_trx_definitions_before_results_and_data_driven_rows() -> None:
    rows = "".join(
        f'<UnitTestResult testId="t1" testName="Calc.Tests.MathTests.Sum (a: {i})"'
        f' duration="00:00:0{i}.5" outcome="{outcome}"/>'
        for i, outcome in ((1, "Passed"), (2, "Failed"))
    )
    results = (
        '<Results><UnitTestResult testId="t1" testName="Sum" outcome="Failed"'
        ' resultType="DataDrivenTest" duration="00:00:03"><InnerResults>'
        + rows
        + "</InnerResults></UnitTestResult></Results>"
    )
    parsed = parse_results(io.BytesIO(_trx(DEFINITION + results)), filename="r.trx")
    assert [(r.name, r.classname, r.suite, r.status, r.duration) for r in parsed.results] == [
        ("Sum (a: 1)", "Calc.Tests.MathTests", "Calc.Tests.dll", TestStatus.PASSED, 1.5),
        ("Sum (a: 2)", "Calc.Tests.MathTests", "Calc.Tests.dll", TestStatus.FAILED, 2.5),
    ]


def test_trx_result_without_definition_keeps_its_name() -> None:
    body = '<Results><UnitTestResult testId="zz" testName="Orphan" outcome="Timeout"/></Results>'
    [result] = parse_results(io.BytesIO(_trx(body)), filename="r.trx").results
    assert (result.name, result.classname, result.status) == ("Orphan", "", TestStatus.ERRORED)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("00:00:00.0012345", 0.0012345), ("01:02:03", 3723.0), ("1.00:00:01.5", 86401.5), ("x", 0.0)],
)
def test_timespan(value: str, seconds: float) -> None:
    assert parse_timespan(value) == pytest.approx(seconds)


def test_junit_namespaced_root_and_rerun_error_only() -> None:
    data = (
        b'<testsuites xmlns="urn:example"><testsuite name="s">'
        b'<testcase name="t" classname="C" time="0.5">'
        b'<rerunError message="boom" type="IOError"><stackTrace>IOError: boom</stackTrace>'
        b"</rerunError><rerunError message='boom again'/></testcase></testsuite></testsuites>"
    )
    [result] = parse_results(io.BytesIO(data), filename="r.xml").results
    assert result.status is TestStatus.ERRORED
    assert result.retries == 2
    assert result.message == "boom"
    assert result.failure_type == "IOError"
    assert result.stack_trace == "IOError: boom"


def test_passing_output_is_not_kept_but_failing_output_is() -> None:
    data = (
        b'<testsuite name="s"><testcase name="ok"><system-out>noise</system-out></testcase>'
        b'<testcase name="bad"><failure message="m"/><system-out>a</system-out>'
        b"<system-out>b</system-out><system-err>e</system-err></testcase></testsuite>"
    )
    ok, bad = parse_results(io.BytesIO(data), filename="r.xml").results
    assert (ok.stdout_tail, ok.status) == (None, TestStatus.PASSED)
    assert (bad.stdout_tail, bad.stderr_tail, bad.message) == ("ab", "e", "m")


def test_malformed_numbers_do_not_fail_the_file() -> None:
    data = b'<testsuite><testcase name="t" time="n/a" line="-3"/><testcase name="u" line="x"/>'
    data += b"</testsuite>"
    first, second = parse_results(io.BytesIO(data), filename="r.xml").results
    assert (first.duration, first.line, second.line) == (0.0, None, None)
