"""The one place where python-gitlab / requests failures become ``providers.base`` errors."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import gitlab.exceptions
import requests

from providers.base import (
    AuthFailed,
    NotFound,
    ProviderError,
    RateLimited,
    TooLarge,
    Transient,
)

# When GitLab throttles without saying until when, come back in a minute.
DEFAULT_RATE_LIMIT_WAIT = timedelta(seconds=60)
_MESSAGE_CAP = 200
_TOO_LARGE_HINTS = ("too long", "too large", "maximum is")


class RateLimitResponse(Exception):
    """Raised by our python-gitlab backend on a 429 (or an exhausted ``RateLimit-Remaining``)
    instead of letting python-gitlab sleep on it: it keeps the headers the translator needs.

    Deliberately not a ``GitlabHttpError``, so python-gitlab's decorators pass it through.
    """

    def __init__(self, status: int, headers: Mapping[str, str], detail: str = "") -> None:
        super().__init__(f"HTTP {status} {detail}".strip())
        self.status = status
        self.headers = {key.lower(): value for key, value in headers.items()}
        self.detail = detail


class RetryLater(Exception):
    """A 5xx that asks for more patience (``Retry-After``) than a worker thread may sleep."""

    def __init__(self, status: int, retry_after: str) -> None:
        super().__init__(f"HTTP {status}, retry after {retry_after}")
        self.status = status


def translate_error(
    exc: BaseException, *, now: datetime, action: str, org: str, forbidden: str | None = None
) -> ProviderError:
    """Map a python-gitlab or requests failure to a typed provider error.

    The message names GitLab, the organisation and ``action`` with the status code and
    GitLab's own message; never a header, so never the token. ``forbidden`` says what a 403
    means for this action (a role the token's user lacks) where GitLab's "403 Forbidden" says
    nothing.
    """
    if isinstance(exc, ProviderError):
        return exc
    prefix = f"GitLab {action} (organisation {org})"
    if isinstance(exc, RateLimitResponse):
        retry_at = rate_limit_retry_at(exc.headers, now=now)
        return RateLimited(
            f"{prefix}: rate limited, {exc}; retry at {retry_at:%H:%M:%S}Z", retry_at
        )
    if isinstance(exc, RetryLater):
        return Transient(f"{prefix}: {exc}")
    if isinstance(exc, requests.Timeout):
        return Transient(f"{prefix}: timed out")
    if isinstance(exc, requests.RequestException):
        return Transient(f"{prefix}: connection failed ({type(exc).__name__})")
    if not isinstance(exc, gitlab.exceptions.GitlabError):
        return ProviderError(f"{prefix}: unexpected {type(exc).__name__}")

    status = exc.response_code
    detail = gitlab_message(exc)
    if status is None:
        return ProviderError(f"{prefix}: {detail}")
    message = f"{prefix}: HTTP {status} {detail}".rstrip()
    if status == 403 and forbidden:
        return AuthFailed(f"{message}; {forbidden}")
    if status in (401, 403):
        return AuthFailed(
            f"{message}; the organisation's GitLab token was refused or lacks access "
            f"(set a new one with `aac integration set gitlab --org {org} --token-stdin`)"
        )
    if status in (404, 410):
        return NotFound(message)
    if status == 413 or (status == 400 and _mentions_size(detail)):
        return TooLarge(message)
    if status == 429:
        return RateLimited(message, now + DEFAULT_RATE_LIMIT_WAIT)
    if status >= 500:
        return Transient(message)
    return ProviderError(message)


def rate_limit_retry_at(headers: Mapping[str, str], *, now: datetime) -> datetime:
    """The earliest time to retry a throttled call: ``Retry-After`` (seconds or an HTTP
    date) wins, then ``RateLimit-Reset`` (a Unix time), else a minute from ``now``."""
    lowered = {key.lower(): value for key, value in headers.items()}
    retry_after = (lowered.get("retry-after") or "").strip()
    if retry_after.isdigit():
        return now + timedelta(seconds=int(retry_after))
    if retry_after:
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(when if when.tzinfo else when.replace(tzinfo=UTC), now)
    reset = (lowered.get("ratelimit-reset") or "").strip()
    if reset.isdigit():
        return max(datetime.fromtimestamp(int(reset), tz=UTC), now)
    return now + DEFAULT_RATE_LIMIT_WAIT


def is_status(exc: BaseException, status: int) -> bool:
    """True when ``exc`` is a python-gitlab error with this HTTP status code."""
    return isinstance(exc, gitlab.exceptions.GitlabError) and exc.response_code == status


def gitlab_message(exc: gitlab.exceptions.GitlabError) -> str:
    """GitLab's own error message (a string, or a field -> messages mapping), capped."""
    return str(exc.error_message)[:_MESSAGE_CAP]


def _mentions_size(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _TOO_LARGE_HINTS)
