"""Mutated real samples either parse or raise ResultFileError: no other exception escapes."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.results.detect import FORMATS
from bot.results.errors import ResultFileError
from bot.results.limits import ParseLimits
from bot.results.parse import parse_results

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = [
    p.read_bytes() for p in sorted(FIXTURES.iterdir()) if not p.name.endswith(".expected.json")
]
LIMITS = ParseLimits(max_test_cases=50, max_stack_chars=64, max_output_tail_chars=16)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "insert":
            data[at:at] = draw(
                st.sampled_from(
                    [b"<", b"&", b"]]>", b"<!DOCTYPE x>", b"\xff\xfe", b"<a>", b"</testcase>"]
                )
            )
        else:
            del data[at:]
    payload = bytes(data)
    return gzip.compress(payload) if draw(st.booleans()) else payload


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_parse_or_raise_result_file_error(data: bytes) -> None:
    error: ResultFileError | None = None
    try:
        parsed = parse_results(io.BytesIO(data), filename="fuzz.xml", limits=LIMITS)
    except ResultFileError as exc:
        error = exc
    if error is not None:
        assert error.code
        assert error.reason.startswith("fuzz.xml")
        assert len(error.reason) < 300
        return
    assert parsed.format in FORMATS
    assert parsed.counted == sum(r.counted for r in parsed.results)
    for result in parsed.results:
        assert result.stack_trace is None or len(result.stack_trace) <= 64
        assert result.stdout_tail is None or len(result.stdout_tail) <= 16
