"""Stored webhook bodies: new LZ4 rows and older zlib rows both read back byte for byte."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from storage.delivery_body import BodyFormatError, decode_body, encode_body

EXAMPLE = (
    Path(__file__).parents[1] / "fixtures" / "github" / "webhooks" / "pull_request.opened.json"
)


def test_round_trip_is_exact_and_smaller() -> None:
    body = EXAMPLE.read_bytes()
    stored = encode_body(body)
    assert decode_body(stored) == body
    assert len(stored) < len(body) / 3


def test_rows_written_before_lz4_still_read() -> None:
    body = EXAMPLE.read_bytes()
    assert decode_body(zlib.compress(body, 1)) == body


@pytest.mark.parametrize("stored", [b"", b"not compressed", encode_body(b"{}" * 500)[:-7]])
def test_damage_is_a_clear_error(stored: bytes) -> None:
    with pytest.raises(BodyFormatError, match="cannot be decompressed"):
        decode_body(stored)
