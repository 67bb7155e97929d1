"""The worker decides retry, reschedule or stop from an error's class alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.worker import Decision, PermanentJobError, decide
from providers.base import (
    AuthFailed,
    NotConfigured,
    NotFound,
    RateLimited,
    TooLarge,
    Transient,
)
from providers.github.errors import InstallationGone


@pytest.mark.parametrize(
    ("error", "decision"),
    [
        (AuthFailed("401"), Decision.STOP),
        (NotFound("404"), Decision.STOP),
        (InstallationGone("gone", 3, app_id=1, api_url="u"), Decision.STOP),
        (NotConfigured("no token"), Decision.STOP),
        (TooLarge("422"), Decision.STOP),
        (PermanentJobError("bad payload"), Decision.STOP),
        (Transient("502"), Decision.RETRY),
        (RuntimeError("a bug"), Decision.RETRY),
        (RateLimited("secondary", datetime(2030, 1, 1, tzinfo=UTC)), Decision.RESCHEDULE),
    ],
)
def test_each_error_class_has_one_decision(error: Exception, decision: Decision) -> None:
    assert decide(error) is decision
