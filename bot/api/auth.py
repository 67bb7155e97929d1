"""Organisation API key authentication and per-organisation rate limiting for the API."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from bot.api.errors import ApiError
from bot.api.ratelimit import RateLimiter
from storage.apikeys import authenticate
from storage.models import ApiKey


async def require_api_key(request: Request, session: AsyncSession) -> ApiKey:
    """The API key row behind ``Authorization: Bearer``; 401 when absent or wrong, 429 when over."""
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
        raise ApiError(
            401,
            "unauthorized",
            "the API key is not valid or was revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    limiter: RateLimiter = request.app.state.rate_limiter
    retry_after = limiter.acquire(key.org_id)
    if retry_after is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests for this organisation; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
    return key
