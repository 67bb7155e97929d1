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


def test_counts_only_suite_is_counted_and_marked() -> None:
    data = (
        b'<testsuites tests="9" failures="3"><testsuite name="only" tests="4" failures="1"'
        b' errors="x" skipped="-2"/><testsuite name="listed" tests="5" failures="2">'
        b'<testcase name="a"/></testsuite></testsuites>'
    )
    parsed = parse_results(io.BytesIO(data), filename="r.xml")
    counted = [r for r in parsed.results if r.counted]
    assert parsed.counted == 4
    assert [r.status for r in counted] == [TestStatus.FAILED] + [TestStatus.PASSED] * 3
    assert {r.suite for r in counted} == {"only"}
    assert counted[0].message is not None
    assert "attributes" in counted[0].message
    # The suite that lists a test case is taken at its word, not at its (stale) counts.
    assert [r.name for r in parsed.results if not r.counted] == ["a"]


def test_counts_that_disagree_take_the_larger_total() -> None:
    data = b'<testsuite name="s" tests="1" failures="2" errors="1"/>'
    parsed = parse_results(io.BytesIO(data), filename="r.xml")
    assert [r.status for r in parsed.results] == [TestStatus.FAILED] * 2 + [TestStatus.ERRORED]


def test_parent_suite_counts_are_its_childrens() -> None:
    data = (
        b'<testsuites><testsuite name="parent" tests="3"><testsuite name="child" tests="3"/>'
        b'</testsuite><testsuite name="empty" tests="0"/></testsuites>'
    )
    parsed = parse_results(io.BytesIO(data), filename="r.xml")
    assert [(r.suite, r.status) for r in parsed.results] == [("child", TestStatus.PASSED)] * 3


def test_disabled_status_never_hides_a_failure() -> None:
    data = (
        b'<testsuite><testcase name="a" status="disabled"><failure message="m"/></testcase>'
        b'<testcase name="b" status="run"/><testcase name="c"><disabled/></testcase></testsuite>'
    )
    a, b, c = parse_results(io.BytesIO(data), filename="r.xml").results
    assert (a.status, b.status, c.status) == (
        TestStatus.FAILED,
        TestStatus.PASSED,
        TestStatus.SKIPPED,
    )


def test_nunit2_without_result_attribute_uses_executed_and_success() -> None:
    cases = (
        '<test-case name="N.C.ok" executed="True" success="True" time="0,5"/>'
        '<test-case name="N.C.bad" executed="True" success="False"/>'
        '<test-case name="N.C.off" executed="False"/>'
    )
    data = f'<test-results><test-suite name="C:\\b\\N.Tests.dll"><results>{cases}</results>'
    data += "</test-suite></test-results>"
    results = parse_results(io.BytesIO(data.encode()), filename="r.xml").results
    assert [(r.classname, r.name, r.suite, r.status, r.duration) for r in results] == [
        ("N.C", "ok", "N.Tests.dll", TestStatus.PASSED, 0.5),
        ("N.C", "bad", "N.Tests.dll", TestStatus.FAILED, 0.0),
        ("N.C", "off", "N.Tests.dll", TestStatus.SKIPPED, 0.0),
    ]


def test_trx_outcome_outside_the_schema_is_not_a_pass() -> None:
    body = '<Results><UnitTestResult testId="zz" testName="T" outcome="Exploded"/></Results>'
    [result] = parse_results(io.BytesIO(_trx(body)), filename="r.trx").results
    assert result.status is TestStatus.ERRORED


@pytest.mark.parametrize(
    "data",
    [
        b'<testsuite name="S"><testcase classname="A&amp;B" name="x &amp;&amp; y &#38; &amp;#38;"'
        b' file="a&amp;b.py"/></testsuite>',
        b'<test-run><test-suite type="Assembly" name="a.dll"><test-case classname="A&amp;B"'
        b' name="x &amp;&amp; y &#38; &amp;#38;" result="Passed"/></test-suite></test-run>',
        b'<assemblies><assembly name="a.dll"><collection><test type="A&amp;B"'
        b' name="A&amp;B.x &amp;&amp; y &#38; &amp;#38;" result="Pass"/></collection></assembly>'
        b"</assemblies>",
    ],
)
def test_ampersands_in_attributes_come_back_as_written(data: bytes) -> None:
    # libxml2 hands parser targets "&" as the text "&#38;" when entities are not expanded.
    [result] = parse_results(io.BytesIO(data), filename="r.xml").results
    assert (result.classname, result.name) == ("A&B", "x && y & &#38;")
