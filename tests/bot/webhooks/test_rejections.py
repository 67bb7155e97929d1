"""Rejected webhooks are logged as counts, never request by request and never with data."""

from __future__ import annotations

import logging

import pytest

from bot.webhooks.rejections import RejectionLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def summaries(caplog: pytest.LogCaptureFixture) -> list[dict[str, int]]:
    return [r.rejected for r in caplog.records if r.getMessage() == "webhooks rejected"]  # type: ignore[attr-defined]


def test_first_at_once_then_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rejections = RejectionLog(logging.getLogger("test.rejections"), interval=10, clock=clock)
    with caplog.at_level(logging.INFO):
        rejections.record("signature_invalid")
        assert summaries(caplog) == [{"signature_invalid": 1}]
        for _ in range(500):
            clock.now += 0.01
            rejections.record("signature_invalid")
        rejections.record("signature_missing")
        assert len(summaries(caplog)) == 1  # a flood inside the interval adds no line
        clock.now += 10
        rejections.record("signature_invalid")
    assert summaries(caplog)[1] == {"signature_invalid": 501, "signature_missing": 1}
    assert caplog.records[-1].seconds == pytest.approx(15.0, abs=0.1)  # type: ignore[attr-defined]


def test_flush_logs_the_remainder_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rejections = RejectionLog(logging.getLogger("test.rejections"), interval=10, clock=clock)
    with caplog.at_level(logging.INFO):
        rejections.record("signature_invalid")
        rejections.record("event_missing")
        rejections.flush()
        rejections.flush()  # nothing new: no line
    assert summaries(caplog) == [{"signature_invalid": 1}, {"event_missing": 1}]
