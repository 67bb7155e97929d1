"""``/healthz`` (the process is alive) and ``/readyz`` (database reachable, migrations current)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.runtime import Runtime
from storage.migrate import current_revision, head_revision


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    try:
        current = await current_revision(runtime.engine)
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database unreachable ({type(exc).__name__})"},
            status_code=503,
        )
    head = head_revision()
    if current != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": "migrations pending; run `aac db upgrade`",
                "database_revision": current,
                "code_revision": head,
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database_revision": current})


ROUTES = [Route("/healthz", healthz), Route("/readyz", readyz)]
