"""``/healthz`` (the process is alive) and ``/readyz`` (database reachable, migrations applied).

A database migrated ahead of this code is ready: during a rolling update the new version
migrates first (migrations are additive) while old replicas keep serving.
"""

from __future__ import annotations

import functools
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.runtime import Runtime
from storage.migrate import current_revision, head_revision, schema_state

log = logging.getLogger("aac.health")


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
    state = schema_state(current)
    if state == "behind":
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": "migrations pending; run `aac db upgrade`",
                "schema": state,
                "database_revision": current,
                "code_revision": head,
            },
            status_code=503,
        )
    if state == "ahead":
        _warn_schema_ahead(current, head)
    return JSONResponse({"status": "ok", "schema": state, "database_revision": current})


@functools.cache
def _warn_schema_ahead(database_revision: str | None, code_revision: str | None) -> None:
    """Once per process and revision pair: the probe runs every few seconds."""
    log.warning(
        "the database is at a migration this code does not ship (a newer version applied it); "
        "serving on the assumption that it is additive",
        extra={"database_revision": database_revision, "code_revision": code_revision},
    )


ROUTES = [Route("/healthz", healthz), Route("/readyz", readyz)]
