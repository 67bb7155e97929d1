"""A cycle's runner log: the report page's section and ``GET /cycles/{id}/log`` (the whole log,
masked), both for a signed link or an API key like the page itself."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.api.cycle_access import readable_cycle
from bot.api.errors import ApiError
from bot.report.runner_section import RunnerSummary, render_runner_section
from bot.runtime import Runtime
from storage import runners
from storage.models import TestCycle
from storage.types import utcnow

TAIL_CHARS = 8 * 1024


async def runner_section(
    runtime: Runtime, session: AsyncSession, cycle: TestCycle, query: str
) -> str:
    """The page's section for the cycle's runner job; empty when no node runs this suite.

    ``query`` is the page's own query string (its signature covers the log too)."""
    job = await runners.job_for_cycle(session, cycle.id)
    if job is None:
        return ""
    end = job.finished_at or utcnow()
    summary = RunnerSummary(
        runner=job.runner_name,
        state=job.state,
        attempts=job.attempts,
        duration=(end - job.assigned_at).total_seconds() if job.assigned_at else None,
        exit_code=job.exit_code,
        reason=job.reason,
        log_tail=await runners.read_log(session, job.id, tail_bytes=TAIL_CHARS),
        log_url=f"{runtime.settings.public_url}/cycles/{cycle.id}/log"
        + (f"?{query}" if query else ""),
    )
    return render_runner_section(summary)


async def cycle_log(request: Request) -> PlainTextResponse:
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        cycle = await readable_cycle(request, runtime, session)
        job = await runners.job_for_cycle(session, cycle.id)
        if job is None:
            raise ApiError(404, "no_runner_log", f"cycle {cycle.id} was not run by a testing node")
        text = await runners.read_log(session, job.id)
    return PlainTextResponse(
        text,
        headers={
            "Content-Disposition": f'attachment; filename="aac-{cycle.id}.log"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


ROUTES = [Route("/cycles/{cycle_id}/log", cycle_log)]
