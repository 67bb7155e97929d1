"""Hostile and broken uploads: every one ends in ResultFileError with a precise code."""

from __future__ import annotations

import gzip
import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.results.errors import ErrorCode, ResultFileError
from bot.results.junit import JUnitTarget
from bot.results.limits import ParseLimits
from bot.results.parse import iter_results, parse_results
from bot.results.xml_stream import stream_results

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[3]
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE testsuites [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
    b'<testsuites><testsuite name="s"><testcase name="&e;" classname="c"/></testsuite></testsuites>'
)
LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b']>\n<testsuites><testsuite name="&lol9;"/></testsuites>'
)


def _error(data: bytes, limits: ParseLimits | None = None, name: str = "r.xml") -> ResultFileError:
    stream = io.BytesIO(data)
    with pytest.raises(ResultFileError) as caught:
        parse_results(stream, filename=name, limits=limits or ParseLimits())
    return caught.value


def _parser_only(data: bytes) -> ResultFileError:
    """Skip the head sniffer: the parser itself must refuse a DOCTYPE too."""
    target = JUnitTarget(namespace="", filename="r.xml", limits=ParseLimits(), suite_outputs=None)
    with pytest.raises(ResultFileError) as caught:
        list(stream_results(io.BytesIO(data), target, filename="r.xml"))
    return caught.value


@pytest.mark.parametrize("check", [_error, _parser_only])
def test_xxe_is_rejected_without_reading_the_file(check: object) -> None:
    error = check(XXE)  # type: ignore[operator]
    assert error.code == ErrorCode.DTD_FORBIDDEN
    assert "root:" not in str(error)
    assert "passwd" not in str(error)


@pytest.mark.parametrize("check", [_error, _parser_only])
def test_billion_laughs_is_rejected_fast(check: object) -> None:
    started = time.perf_counter()
    error = check(LAUGHS)  # type: ignore[operator]
    assert error.code == ErrorCode.DTD_FORBIDDEN
    assert time.perf_counter() - started < 1.0
    assert "lol" not in error.detail


def test_undeclared_entity_is_invalid_xml() -> None:
    error = _error(b'<testsuite><testcase name="&xxe;"/></testsuite>')
    assert error.code == ErrorCode.INVALID_XML
    assert error.line == 1


class _Endless(io.RawIOBase):
    """A valid, never-ending JUnit stream produced on the fly (nothing written to disk)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.served = 0
        self._case = (
            b'<testcase name="t" classname="c" time="0.1"><system-out>'
            + b"x" * 60_000
            + b"</system-out></testcase>\n"
        )
        self._buffer = b'<testsuites><testsuite name="s">\n'

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if self.served >= self.total:
            return 0
        while len(self._buffer) < len(buffer):
            self._buffer += self._case
        n = min(len(buffer), self.total - self.served)
        buffer[:n], self._buffer = self._buffer[:n], self._buffer[n:]
        self.served += n
        return n


def test_oversized_stream_is_rejected_once_the_limit_is_crossed() -> None:
    stream = _Endless(200 * 1024 * 1024)
    limit = 4 * 1024 * 1024
    with pytest.raises(ResultFileError) as caught:
        parse_results(stream, filename="big.xml", limits=ParseLimits(max_file_bytes=limit))
    assert caught.value.code == ErrorCode.TOO_LARGE
    assert stream.served <= limit + 256 * 1024  # stopped right after the limit


def test_oversized_stream_with_default_limits_keeps_memory_bounded() -> None:
    # A fresh interpreter, so its peak RSS is this parse alone.
    code = f"""
import json, sys
sys.path[:0] = [{str(ROOT)!r}, {str(Path(__file__).parent)!r}]
from test_hostile_result_files import _Endless
from bot.results.errors import ResultFileError
from bot.results.parse import parse_results
stream = _Endless(200 * 1024 * 1024)
try:
    parse_results(stream, filename="big.xml")
except ResultFileError as exc:
    code = exc.code
# VmHWM belongs to this process image; ru_maxrss would carry the forking parent's peak
# across exec (Linux keeps it), and a large pytest parent would then look like our peak.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"code": code, "served": stream.served,
    "peak_mb": int(hwm.split()[1]) / 1024}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    report = json.loads(done.stdout)
    assert report["code"] == "too_large"
    assert report["served"] < 101 * 1024 * 1024
    assert report["peak_mb"] < 100, report


def _bomb(decompressed: int) -> bytes:
    """Gzip members (concatenated, which gzip allows) of a JUnit-looking file inflating to
    `decompressed` bytes; one 8 MiB member is compressed once and repeated."""
    head = gzip.compress(b'<testsuites><testsuite name="s"><testcase name="t"><system-out>')
    block = 8 * 1024 * 1024
    member = gzip.compress(b"A" * block, compresslevel=9)
    return head + member * (decompressed // block)


def test_gzip_bomb_is_stopped_at_the_decompressed_limit() -> None:
    bomb = _bomb(512 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    started = time.perf_counter()
    error = _error(bomb, ParseLimits(max_decompressed_bytes=8 * 1024 * 1024))
    assert error.code == ErrorCode.TOO_LARGE
    assert "decompressed" in error.detail
    assert time.perf_counter() - started < 5.0


def test_gzip_file_parses_like_the_plain_one() -> None:
    plain = (FIXTURES / "TEST-com.example.orders.OrderServiceTest.xml").read_bytes()
    unzipped = parse_results(io.BytesIO(plain), filename="r.xml")
    zipped = parse_results(io.BytesIO(gzip.compress(plain)), filename="r.xml.gz")
    assert zipped.compressed
    assert not unzipped.compressed
    assert zipped.results == unzipped.results
    assert len(zipped.results) == 4


def test_corrupt_and_truncated_gzip_are_rejected() -> None:
    packed = gzip.compress((FIXTURES / "nunit3.xml").read_bytes())
    assert _error(packed[: len(packed) // 2]).code == ErrorCode.INVALID_GZIP
    corrupt = packed[:20] + bytes(b ^ 0xFF for b in packed[20:60]) + packed[60:]
    assert _error(corrupt).code in (ErrorCode.INVALID_GZIP, ErrorCode.INVALID_XML)


def test_truncated_xml_names_line_and_column() -> None:
    data = (FIXTURES / "TEST-com.example.calc.CalculatorTest.xml").read_bytes()
    error = _error(data[:1500], name="results/junit.xml")
    assert error.code == ErrorCode.INVALID_XML
    assert error.line is not None
    assert error.line > 1
    assert error.reason.startswith(f"results/junit.xml line {error.line}, column ")


def test_mismatched_tag_reason() -> None:
    error = _error(b'<testsuite name="s">\n  <testcase name="a">\n</testsuite>', name="j.xml")
    assert error.code == ErrorCode.INVALID_XML
    assert error.line == 3
    assert error.reason.startswith("j.xml line 3, column ")
    assert "mismatch" in error.reason


def test_invalid_utf8_is_an_encoding_error() -> None:
    data = b'<testsuite name="s">\n<testcase name="caf\xe9 \xff"/>\n</testsuite>'
    error = _error(data)
    assert error.code == ErrorCode.INVALID_ENCODING
    assert error.line == 2


def test_unknown_format_and_empty_file() -> None:
    assert _error(b'{"tests": []}').code == ErrorCode.UNKNOWN_FORMAT
    assert _error(b"").code == ErrorCode.EMPTY
    assert _error(b"<report><test/></report>").code == ErrorCode.UNKNOWN_FORMAT


def test_too_many_cases_is_rejected_and_nothing_partial_is_returned() -> None:
    cases = b"".join(b'<testcase name="t%d"/>' % i for i in range(50))
    data = b"<testsuite>" + cases + b"</testsuite>"
    assert len(parse_results(io.BytesIO(data), filename="r.xml").results) == 50
    error = _error(data, ParseLimits(max_test_cases=49))
    assert error.code == ErrorCode.TOO_MANY_CASES


def test_iter_results_raises_after_the_good_prefix() -> None:
    data = b"<testsuite>" + b'<testcase name="ok"/>' * 3 + b"<testcase>"
    results = iter_results(io.BytesIO(data), filename="r.xml")
    seen = [next(results).name for _ in range(3)]
    with pytest.raises(ResultFileError):
        next(results)
    assert seen == ["ok"] * 3


def test_huge_texts_are_bounded_head_and_tail() -> None:
    trace = "Error: first line\n" + "  at frame\n" * 500_000 + "last frame"
    data = (
        '<testsuite><testcase name="t"><failure message="boom">'
        + trace
        + "</failure><system-out>"
        + "o" * 1_000_000
        + "END</system-out></testcase></testsuite>"
    ).encode()
    limits = ParseLimits(max_stack_chars=1000, max_output_tail_chars=100)
    [result] = parse_results(io.BytesIO(data), filename="r.xml", limits=limits).results
    assert result.stack_trace is not None
    assert len(result.stack_trace) <= 1000
    assert result.stack_trace.startswith("Error: first line")
    assert result.stack_trace.endswith("last frame")
    assert "characters omitted" in result.stack_trace
    assert result.stdout_tail == "o" * 97 + "END"


def test_a_case_with_a_million_children_stays_cheap() -> None:
    props = b'<property name="k" value="v"/>' * 200_000
    data = b'<testsuite><testcase name="t"><properties>' + props + b"</properties>"
    data += b'<failure message="m">trace</failure></testcase></testsuite>'
    [result] = parse_results(io.BytesIO(data), filename="r.xml").results
    # Children past the capture budget are dropped; the test case itself survives.
    assert result.name == "t"


def test_doctype_without_entities_parses_and_fetches_nothing() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        data = (
            f'<?xml version="1.0"?>\n<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:{port}/j.dtd">\n'
            '<testsuite name="s"><testcase name="t" classname="c"/></testsuite>'
        ).encode()
        [result] = parse_results(io.BytesIO(data), filename="r.xml").results
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()  # the DTD was never requested
    assert result.name == "t"


@pytest.mark.parametrize(
    "doctype",
    [b'<!DOCTYPE testsuite SYSTEM "file:///etc/passwd">', b"<!DOCTYPE testsuite>"],
)
def test_doctype_file_that_uses_an_entity_is_refused(doctype: bytes) -> None:
    data = doctype + b'\n<testsuite name="s">\n<testcase name="&e;"/></testsuite>'
    error = _error(data)
    assert error.code == ErrorCode.INVALID_XML
    assert "entities are never expanded" in error.detail
    assert error.line == 3
    assert "root:" not in error.reason


def test_positions_after_an_accepted_doctype_stay_right() -> None:
    data = b'<!DOCTYPE testsuite\n  SYSTEM "junit.dtd">\n<testsuite>\n<testcase name="a">\n'
    data += b"</testsuite>"
    error = _error(data, name="j.xml")
    assert error.code == ErrorCode.INVALID_XML
    assert error.line == 5


@pytest.mark.parametrize("root", [b"test-results", b"test-suite", b"assembly", b"assemblies"])
def test_entity_tricks_are_refused_in_every_dialect(root: bytes) -> None:
    for payload in (XXE, LAUGHS):
        data = payload.replace(b"testsuites", root).replace(b"testsuite", root)
        assert _error(data).code == ErrorCode.DTD_FORBIDDEN


def test_absurd_suite_counts_are_refused_before_anything_is_built() -> None:
    started = time.perf_counter()
    error = _error(b'<testsuites><testsuite name="s" tests="999999999"/></testsuites>')
    assert error.code == ErrorCode.TOO_MANY_CASES
    assert time.perf_counter() - started < 1.0


def test_many_counted_suites_add_up_against_the_case_limit() -> None:
    suites = b'<testsuite name="s" tests="40" failures="1"/>' * 3
    data = b"<testsuites>" + suites + b"</testsuites>"
    assert len(parse_results(io.BytesIO(data), filename="r.xml").results) == 120
    assert _error(data, ParseLimits(max_test_cases=100)).code == ErrorCode.TOO_MANY_CASES


def test_nunit2_and_xunit1_huge_texts_stay_bounded() -> None:
    big = "x" * 2_000_000
    nunit2 = (
        '<test-results><test-suite type="Assembly" name="a.dll" executed="True"><results>'
        f'<test-case name="N.C.t" executed="True" result="Failure" success="False"><failure>'
        f"<message>{big}</message><stack-trace>{big}</stack-trace></failure></test-case>"
        "</results></test-suite></test-results>"
    )
    xunit1 = (
        f'<assembly name="a.dll"><class name="C"><test name="C.t" type="C" result="Skip">'
        f"<reason><message>{big}</message></reason></test></class></assembly>"
    )
    limits = ParseLimits(max_message_chars=100, max_stack_chars=1000)
    for data in (nunit2, xunit1):
        [result] = parse_results(io.BytesIO(data.encode()), filename="r.xml", limits=limits).results
        assert result.message is not None
        assert len(result.message) <= 100
        assert result.stack_trace is None or len(result.stack_trace) <= 1000
