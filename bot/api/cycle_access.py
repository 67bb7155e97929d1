"""Who may read a cycle's report page and log: a signed link, or an API key of its organisation."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from bot.api.auth import require_api_key
from bot.api.errors import ApiError
from bot.links import verify_report_link
from bot.runtime import Runtime
from storage.models import TestCycle


async def readable_cycle(request: Request, runtime: Runtime, session: AsyncSession) -> TestCycle:
    """The cycle of the path, for a valid signed link or an API key of its organisation."""
    cycle_id = request.path_params["cycle_id"]
    params = request.query_params
    if "sig" in params or "authorization" not in request.headers:
        if not verify_report_link(
            runtime.vault.keyring,
            cycle_id,
            exp=params.get("exp"),
            kid=params.get("kid"),
            sig=params.get("sig"),
        ):
            raise ApiError(
                403,
                "forbidden",
                "this report link is invalid or has expired; "
                "open the newest one from the check run, or send an API key",
            )
        cycle = await session.get(TestCycle, cycle_id)
    else:
        key = await require_api_key(request, session, scope="read")
        cycle = await session.get(TestCycle, cycle_id)
        if cycle is not None and cycle.org_id != key.org_id:
            cycle = None
    if cycle is None:
        raise ApiError(404, "cycle_not_found", f"no cycle {cycle_id}")
    return cycle
