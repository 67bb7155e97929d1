"""Streamed text is bounded while it arrives, and reads back exactly like `clip` / a tail."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.results.capture import Node
from bot.results.errors import ErrorCode, ResultFileError
from bot.results.limits import ParseLimits
from bot.results.text import clip, first_line, message_of, path_basename, strip_prefix


def _feed(text: str, cuts: list[int], keep: int) -> Node:
    node = Node("failure", {})
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    for start, end in itertools.pairwise(bounds):
        node.parts = (node.parts or []) + [text[start:end]]
        node.size += end - start
        if node.size > 2 * keep:
            node.compact(keep)
    return node


@settings(max_examples=400, deadline=None)
@given(
    text=st.text(alphabet="ab\n \r", max_size=600),
    cuts=st.lists(st.integers(0, 600), max_size=30),
    limit=st.integers(1, 120),
)
def test_node_text_matches_clip_of_the_whole(text: str, cuts: list[int], limit: int) -> None:
    keep = 150  # the capture keeps max(stack, output) >= any limit asked for
    node = _feed(text, cuts, keep)
    expected = (clip(text, limit) or "").strip("\r\n")
    assert node.text(limit) == (expected if expected.strip() else None)
    assert node.tail(limit) == (text[-limit:] or None)
    assert node.size <= 2 * keep + 600


def test_clip_keeps_head_and_tail_within_limit() -> None:
    text = "HEAD" + "x" * 10_000 + "TAIL"
    clipped = clip(text, 100)
    assert clipped is not None
    assert len(clipped) == 100
    assert clipped.startswith("HEAD")
    assert clipped.endswith("TAIL")
    assert "10008 characters omitted" in clipped or "characters omitted" in clipped
    assert clip("short", 100) == "short"
    assert clip(None, 10) is None


def test_message_helpers() -> None:
    assert first_line("\n\n  Error: boom  \n at x") == "Error: boom"
    assert first_line("   \n") is None
    assert message_of("  ", "\nAssertionError: x\n at y", 100) == "AssertionError: x"
    assert message_of("attr wins", "body", 100) == "attr wins"
    assert message_of(None, None, 100) is None
    assert path_basename("C:\\build\\bin\\Shop.Tests.dll") == "Shop.Tests.dll"
    assert path_basename("/src/bin/a.dll") == "a.dll"
    assert strip_prefix("Ns.Cls.Method(x: 1)", "Ns.Cls") == "Method(x: 1)"
    assert strip_prefix("Other.Method", "Ns.Cls") == "Other.Method"


def test_error_reason_names_file_and_position() -> None:
    error = ResultFileError(
        ErrorCode.INVALID_XML, "mismatched tag", filename="results/junit.xml", line=12, column=4
    )
    assert error.reason == "results/junit.xml line 12, column 4: mismatched tag"
    assert str(error) == error.reason
    assert ResultFileError(ErrorCode.EMPTY, "empty", filename="a.xml").reason == "a.xml: empty"
    assert error.code == "invalid_xml"


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_test_cases"):
        ParseLimits(max_test_cases=0)


@pytest.mark.parametrize("limit", [1, 10, 45, 60, 120, 150])
def test_spilled_node_reads_back_like_clip(limit: int) -> None:
    text = "".join(f"line {i}\n" for i in range(400))  # ~3.5k chars, spills at 300
    node = _feed(text, list(range(0, len(text), 7)), keep=150)
    assert node.spill is not None
    expected = (clip(text, limit) or "").strip("\r\n")
    assert node.text(limit) == (expected or None)
    assert node.tail(limit) == text[-limit:]
