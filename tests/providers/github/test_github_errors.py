"""The one translator from gidgethub / httpx failures to providers.base errors."""

from __future__ import annotations

import http
from datetime import UTC, datetime, timedelta

import gidgethub
import httpx
import pytest

from providers.base import AuthFailed, NotFound, ProviderError, RateLimited, TooLarge, Transient
from providers.github.errors import translate_error

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def _http_error(
    status: int, message: str = "", headers: dict[str, str] | None = None
) -> gidgethub.HTTPException:
    args = (message,) if message else ()
    return gidgethub.BadRequest(http.HTTPStatus(status), *args, headers=headers or {})


def test_secondary_limit_uses_retry_after_seconds() -> None:
    exc = _http_error(
        403,
        "You have exceeded a secondary rate limit and have been temporarily blocked",
        {"retry-after": "90", "x-ratelimit-remaining": "4000"},
    )
    error = translate_error(exc, now=NOW, action="create comment")
    assert isinstance(error, RateLimited)
    assert error.retry_at == NOW + timedelta(seconds=90)


def test_retry_after_as_http_date() -> None:
    exc = _http_error(429, "slow down", {"Retry-After": "Wed, 01 May 2024 12:05:00 GMT"})
    error = translate_error(exc, now=NOW, action="x")
    assert isinstance(error, RateLimited)
    assert error.retry_at == NOW + timedelta(minutes=5)


def test_secondary_limit_message_without_headers_waits_a_minute() -> None:
    exc = _http_error(403, "You have exceeded a secondary rate limit. Please wait.")
    error = translate_error(exc, now=NOW, action="x")
    assert isinstance(error, RateLimited)
    assert error.retry_at == NOW + timedelta(seconds=60)


def test_primary_limit_uses_reset_epoch() -> None:
    reset = int((NOW + timedelta(minutes=17)).timestamp())
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    exc = gidgethub.RateLimitExceeded(None, "API rate limit exceeded", headers=headers)
    error = translate_error(exc, now=NOW, action="x")
    assert isinstance(error, RateLimited)
    assert error.retry_at == NOW + timedelta(minutes=17)


def test_bare_429_is_rate_limited() -> None:
    error = translate_error(_http_error(429), now=NOW, action="x")
    assert isinstance(error, RateLimited)


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (401, "Bad credentials", AuthFailed),
        (403, "Resource not accessible by integration", AuthFailed),
        (404, "Not Found", NotFound),
        (410, "Gone", NotFound),
        (413, "", TooLarge),
        (400, "Problems parsing JSON", ProviderError),
    ],
)
def test_status_codes(status: int, message: str, expected: type[ProviderError]) -> None:
    error = translate_error(_http_error(status, message), now=NOW, action="x")
    assert type(error) is expected


def test_validation_too_long_is_too_large_other_422_is_permanent() -> None:
    too_long = gidgethub.ValidationError(
        [{"code": "custom", "message": "body is too long (maximum is 65536 characters)"}],
        "Validation Failed",
    )
    other = gidgethub.InvalidField([{"code": "invalid", "field": "sha"}], "Validation Failed")
    assert isinstance(translate_error(too_long, now=NOW, action="x"), TooLarge)
    error = translate_error(other, now=NOW, action="x")
    assert type(error) is ProviderError


def test_server_errors_and_transport_failures_are_transient() -> None:
    broken = gidgethub.GitHubBroken(http.HTTPStatus(502))
    request = httpx.Request("GET", "https://api.github.com/x")
    assert isinstance(translate_error(broken, now=NOW, action="x"), Transient)
    timeout = httpx.ReadTimeout("timed out", request=request)
    assert isinstance(translate_error(timeout, now=NOW, action="x"), Transient)
    refused = httpx.ConnectError("refused", request=request)
    assert isinstance(translate_error(refused, now=NOW, action="x"), Transient)


def test_message_names_action_and_status_but_no_headers() -> None:
    exc = _http_error(401, "Bad credentials", {"authorization": "token ghs_secret"})
    error = translate_error(exc, now=NOW, action="update check run")
    assert "update check run" in str(error)
    assert "401" in str(error)
    assert "ghs_secret" not in str(error)
