"""The one translator from python-gitlab / requests failures to providers.base errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import gitlab.exceptions
import pytest
import requests

from providers.base import AuthFailed, NotFound, ProviderError, RateLimited, TooLarge, Transient
from providers.gitlab.errors import (
    RateLimitResponse,
    RetryLater,
    rate_limit_retry_at,
    translate_error,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def _translate(exc: BaseException) -> ProviderError:
    return translate_error(exc, now=NOW, action="publish MR note", org="acme")


def _http(status: int, message: object = "") -> gitlab.exceptions.GitlabError:
    return gitlab.exceptions.GitlabCreateError(message, status, b"")  # type: ignore[arg-type]


def test_a_refused_token_names_gitlab_and_the_organisation() -> None:
    error = _translate(gitlab.exceptions.GitlabAuthenticationError("401 Unauthorized", 401, b""))
    assert isinstance(error, AuthFailed)
    assert "GitLab publish MR note (organisation acme): HTTP 401 401 Unauthorized" in str(error)
    assert "aac integration set gitlab --org acme --token-stdin" in str(error)


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (403, "403 Forbidden", AuthFailed),
        (404, "404 Project Not Found", NotFound),
        (410, "410 Gone", NotFound),
        (413, "413 Request Entity Too Large", TooLarge),
        (400, {"note": ["is too long (maximum is 1000000 characters)"]}, TooLarge),
        (400, "Cannot transition status via :run from :running", ProviderError),
        (429, "Retry later", RateLimited),
        (500, "500 Internal Server Error", Transient),
        (502, "502 Bad Gateway", Transient),
        (409, "409 Conflict", ProviderError),
    ],
)
def test_status_codes(status: int, message: object, kind: type[ProviderError]) -> None:
    error = _translate(_http(status, message))
    assert type(error) is kind
    assert f"HTTP {status}" in str(error)


def test_transport_failures_are_transient() -> None:
    assert isinstance(_translate(requests.ReadTimeout("read timed out")), Transient)
    assert "timed out" in str(_translate(requests.ConnectTimeout()))
    assert isinstance(_translate(requests.ConnectionError("refused")), Transient)
    assert isinstance(_translate(RetryLater(503, "3600")), Transient)


def test_our_own_errors_pass_through_and_unknown_ones_are_typed() -> None:
    gone = NotFound("x")
    assert _translate(gone) is gone
    assert type(_translate(ValueError("boom"))) is ProviderError


def test_a_throttled_response_retries_after_its_retry_after() -> None:
    error = _translate(RateLimitResponse(429, {"Retry-After": "90", "RateLimit-Reset": "1"}))
    assert isinstance(error, RateLimited)
    assert error.retry_at == NOW + timedelta(seconds=90)
    assert "organisation acme" in str(error)


def test_retry_after_as_an_http_date() -> None:
    headers = {"Retry-After": "Fri, 01 May 2026 12:05:00 GMT"}
    assert rate_limit_retry_at(headers, now=NOW) == NOW + timedelta(minutes=5)


def test_ratelimit_reset_without_retry_after() -> None:
    reset = int((NOW + timedelta(minutes=3)).timestamp())
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
    assert rate_limit_retry_at(headers, now=NOW) == NOW + timedelta(minutes=3)


def test_no_hint_waits_a_minute_and_the_past_means_now() -> None:
    assert rate_limit_retry_at({}, now=NOW) == NOW + timedelta(seconds=60)
    assert rate_limit_retry_at({"RateLimit-Reset": "100"}, now=NOW) == NOW
    assert rate_limit_retry_at({"Retry-After": "soon"}, now=NOW) == NOW + timedelta(seconds=60)
