"""The one place where azure-devops SDK / msrest / HTTP failures become ``providers.base`` errors.

The SDK turns every failure into an ``AzureDevOpsClientRequestError`` that has lost the status
code and the headers (no ``Retry-After``, no throttling headers), and it takes Azure's answer to a
bad PAT (``203`` with an HTML sign-in page) for a success. So each SDK client gets
``raise_for_response`` as a response hook: it raises ``AzureHttpError`` with the status, the
headers that matter and Azure's own message before the SDK looks at the response, and
``translate_error`` maps that (or a transport error) to the typed tree.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import DeserializationError
from msrest.exceptions import ClientException, ClientRequestError

from providers.base import AuthFailed, NotFound, ProviderError, RateLimited, TooLarge, Transient

# Azure's throttling docs: wait for Retry-After; without one, a minute is a safe default.
DEFAULT_THROTTLE_WAIT = timedelta(seconds=60)
_MESSAGE_CAP = 200
# Only these headers are kept: never Authorization, cookies or anything echoing a credential.
_KEPT_HEADERS = (
    "retry-after",
    "x-ratelimit-resource",
    "x-ratelimit-delay",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "content-type",
    "activityid",
)


class AzureHttpError(Exception):
    """An HTTP answer that is not a success: status, the throttling headers and Azure's message."""

    def __init__(self, status: int, headers: Mapping[str, str], message: str) -> None:
        super().__init__(f"HTTP {status} {message}".rstrip())
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items() if k.lower() in _KEPT_HEADERS}
        self.message = message


def raise_for_response(response: Any, *args: Any, **kwargs: Any) -> None:
    """A ``requests`` response hook: raise ``AzureHttpError`` for 203 and every 4xx/5xx."""
    status = int(response.status_code)
    if status != 203 and status < 400:
        return
    raise AzureHttpError(status, dict(response.headers), _azure_message(response))


def translate_error(exc: BaseException, *, org: str, now: datetime, action: str) -> ProviderError:
    """Map an SDK/HTTP failure to a typed provider error naming ``org``, never the PAT.

    ``action`` names what was being done ("create PR thread"); the message carries it, the
    organisation, the status and Azure's own message, never a header value or a URL.
    """
    if isinstance(exc, ProviderError):
        return exc
    where = f"Azure DevOps {action} (organisation {org})"
    if isinstance(exc, AzureHttpError):
        return _from_status(exc, where, now=now)
    if isinstance(exc, DeserializationError):
        return ProviderError(f"{where}: unreadable answer ({type(exc).__name__})")
    if isinstance(exc, ClientRequestError):
        # msrest wraps requests' ConnectionError/Timeout here; the SDK's own status errors
        # never get this far because the response hook raised first.
        return Transient(f"{where}: connection failed ({_inner_name(exc)})")
    if isinstance(exc, ClientException):
        return ProviderError(f"{where}: {type(exc).__name__}")
    if isinstance(exc, ValueError) and "resource location" in str(exc):
        # The server does not offer this API (an old Azure DevOps Server): not retryable.
        return ProviderError(f"{where}: the server does not offer this API")
    if isinstance(exc, OSError):
        return Transient(f"{where}: connection failed ({type(exc).__name__})")
    return ProviderError(f"{where}: unexpected {type(exc).__name__}")


def _from_status(exc: AzureHttpError, where: str, *, now: datetime) -> ProviderError:
    status = exc.status
    if status == 203:
        return AuthFailed(
            f"{where}: the personal access token was refused (HTTP 203 sign-in page); "
            "check that it is valid, not expired and scoped for Code and Test Management"
        )
    message = f"{where}: HTTP {status} {exc.message}".rstrip()
    if status == 429 or (exc.headers.get("x-ratelimit-remaining") == "0" and status >= 400):
        return RateLimited(message, throttle_retry_at(exc.headers, now=now))
    if status in (401, 403):
        return AuthFailed(message)
    if status in (404, 410):
        return NotFound(message)
    if status == 413 or (status == 400 and "too long" in exc.message.lower()):
        return TooLarge(message)
    if status >= 500 or status == 408:
        return Transient(message)
    return ProviderError(message)


def throttle_retry_at(headers: Mapping[str, str], *, now: datetime) -> datetime:
    """When to retry a throttled call: ``Retry-After``, else ``X-RateLimit-Reset``, else 1 min."""
    retry_after = headers.get("retry-after", "").strip()
    if retry_after.isdigit():
        return now + timedelta(seconds=int(retry_after))
    if retry_after:
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(when if when.tzinfo else when.replace(tzinfo=UTC), now)
    reset = headers.get("x-ratelimit-reset", "").strip()
    if reset.isdigit():
        return max(datetime.fromtimestamp(int(reset), tz=UTC), now)
    return now + DEFAULT_THROTTLE_WAIT


def is_status(exc: BaseException, *statuses: int) -> bool:
    """True when ``exc`` is an HTTP answer with one of these status codes."""
    return isinstance(exc, AzureHttpError) and exc.status in statuses


def _azure_message(response: Any) -> str:
    """Azure's own message from a WrappedException body; nothing from an HTML page."""
    content_type = str(response.headers.get("content-type", ""))
    if "json" not in content_type:
        return ""
    try:
        data = json.loads(response.content or b"{}")
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:_MESSAGE_CAP] if message else ""


def _inner_name(exc: ClientRequestError) -> str:
    inner = getattr(exc, "inner_exception", None)
    return type(inner).__name__ if inner is not None else type(exc).__name__
