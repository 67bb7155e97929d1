"""Organisation API key authentication, scopes, and rate limits for the API: per organisation
for authenticated requests, per client address for failed authentications."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from bot.api.errors import ApiError
from bot.api.ratelimit import RateLimiter
from storage.apikeys import authenticate, has_scope
from storage.models import ApiKey

# What each scope lets a key do, for the 403's reason.
SCOPE_DOES = {
    "report": "create cycles and upload results",
    "read": "read cycles and reports",
    "run": "start manual suites on the testing nodes",
}


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _too_many(retry_after: int, whose: str) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"too many requests {whose}; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


async def require_api_key(request: Request, session: AsyncSession, *, scope: str | None) -> ApiKey:
    """The API key row behind ``Authorization: Bearer``; 401 when absent or wrong, 403 when
    it lacks ``scope`` (None: either scope will do), 429 when over a limit.

    Failed attempts are counted per client address before any lookup, so guessing keys is
    throttled even though no organisation is known yet.
    """
    failures: RateLimiter = request.app.state.auth_failure_limiter
    client = _client(request)
    retry_after = failures.blocked(client)
    if retry_after is not None:
        raise _too_many(retry_after, "with invalid API keys from this address")
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send an organisation API key as 'Authorization: Bearer <key>' "
            "(create one with `aac apikey create --org SLUG`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = await authenticate(session, presented.strip())
    if key is None:
        failures.acquire(client)
        raise ApiError(
            401,
            "unauthorized",
            "the API key is not valid or was revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    limiter: RateLimiter = request.app.state.rate_limiter
    retry_after = limiter.acquire(key.org_id)
    if retry_after is not None:
        raise _too_many(retry_after, "for this organisation")
    if scope is not None and not has_scope(key, scope):
        raise ApiError(
            403,
            "insufficient_scope",
            f"this API key has scope {key.scopes}; to {SCOPE_DOES[scope]} it needs scope "
            f"{scope} (create one with `aac apikey create --org SLUG --scope {scope}`)",
            required_scope=scope,
        )
    return key
