"""The one place where gidgethub / httpx failures become ``providers.base`` errors."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import gidgethub
import httpx

from providers.base import (
    AuthFailed,
    NotFound,
    ProviderError,
    RateLimited,
    TooLarge,
    Transient,
)

# GitHub's advice when a secondary limit names no retry-after: wait at least a minute.
SECONDARY_LIMIT_DEFAULT_WAIT = timedelta(seconds=60)
_MESSAGE_CAP = 200
_TOO_LARGE_HINTS = ("too long", "too large", "maximum is")


def translate_error(
    exc: BaseException, *, now: datetime, action: str, org: str | None = None
) -> ProviderError:
    """Map a gidgethub HTTP error or an httpx transport error to a typed provider error.

    ``action`` names what was being done ("update check run"); the message carries it, the
    organisation when given, the status code and GitHub's own message, never a header (so
    never a token or a JWT).
    """
    if isinstance(exc, ProviderError):
        return exc
    if org:
        action = f"{action} (organisation {org})"
    if isinstance(exc, httpx.TimeoutException):
        return Transient(f"GitHub {action}: timed out")
    if isinstance(exc, httpx.TransportError):
        return Transient(f"GitHub {action}: connection failed ({type(exc).__name__})")
    if not isinstance(exc, gidgethub.HTTPException):
        return ProviderError(f"GitHub {action}: unexpected {type(exc).__name__}")

    status = int(exc.status_code)
    github_message = _github_message(exc)
    message = f"GitHub {action}: HTTP {status} {github_message}".rstrip()
    if status in (403, 429):
        retry_at = rate_limit_retry_at(status, exc.headers, github_message, now=now)
        if retry_at is not None:
            return RateLimited(message, retry_at)
        return AuthFailed(message)
    if status == 401:
        return AuthFailed(message)
    if status in (404, 410):
        return NotFound(message)
    if status == 413 or (status == 422 and _mentions_size(github_message)):
        return TooLarge(message)
    if status >= 500:
        return Transient(message)
    return ProviderError(message)


def rate_limit_retry_at(
    status: int, headers: Mapping[str, str], message: str, *, now: datetime
) -> datetime | None:
    """When a 403/429 is a rate limit, the earliest time to retry; None when it is not one.

    GitHub's documented order: ``retry-after`` wins, then an exhausted primary limit's
    ``x-ratelimit-reset``, then a secondary-limit message (or any 429) means one minute.
    """
    retry_after = _header(headers, "retry-after")
    if retry_after is not None:
        parsed = _parse_retry_after(retry_after, now=now)
        if parsed is not None:
            return parsed
    if _header(headers, "x-ratelimit-remaining") == "0":
        reset = _header(headers, "x-ratelimit-reset")
        if reset is not None and reset.strip().isdigit():
            return datetime.fromtimestamp(int(reset), tz=UTC)
        return now + SECONDARY_LIMIT_DEFAULT_WAIT
    if status == 429 or "rate limit" in message.lower():
        return now + SECONDARY_LIMIT_DEFAULT_WAIT
    return None


def is_status(exc: BaseException, status: int) -> bool:
    """True when ``exc`` is a gidgethub HTTP error with this status code."""
    return isinstance(exc, gidgethub.HTTPException) and int(exc.status_code) == status


def _github_message(exc: gidgethub.HTTPException) -> str:
    text = str(exc)
    errors = getattr(exc, "errors", None)
    if errors:
        details = [e.get("message") for e in errors if isinstance(e, Mapping) and e.get("message")]
        if details:
            text = f"{text} ({'; '.join(str(d) for d in details)})"
    return text[:_MESSAGE_CAP]


def _mentions_size(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _TOO_LARGE_HINTS)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # Plain dicts from tests or other backends may keep GitHub's capitalisation.
        lowered = {key.lower(): v for key, v in headers.items()}
        value = lowered.get(name)
    return value


def _parse_retry_after(value: str, *, now: datetime) -> datetime | None:
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when, now)


class InstallationGone(NotFound):
    """GitHub does not know this App installation: a token was refused with 404 and the App
    itself (``GET /app/installations/{id}``) confirmed it. Uninstalled, or never this App's;
    retrying cannot help until it is installed or linked again. ``app_id`` and ``api_url``
    name the App, since installation ids repeat across hosts."""

    def __init__(self, message: str, installation_id: int, *, app_id: int, api_url: str) -> None:
        super().__init__(message)
        self.installation_id = installation_id
        self.app_id = app_id
        self.api_url = api_url
