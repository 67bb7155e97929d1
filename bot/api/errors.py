"""One error shape for the whole API: ``{"error": code, "detail": text, ...}`` with a 4xx/5xx."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    """Raised by handlers; rendered as JSON with the status code it carries."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.extra = {k: v for k, v in extra.items() if v is not None}


async def api_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    body = {"error": exc.code, "detail": exc.detail, **exc.extra}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)
