"""Fixtures for the reporter tests: a loopback fake server, instant retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_aac import FakeAac, FakeTime

from bot.reporter.retry import RetryPolicy


@pytest.fixture
def fake_aac() -> Iterator[FakeAac]:
    server = FakeAac()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def policy(fake_time: FakeTime) -> RetryPolicy:
    return RetryPolicy(sleep=fake_time.sleep, clock=fake_time.clock, rng=lambda: 0.5)
