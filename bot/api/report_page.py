"""``GET /cycles/{id}``: the full report page, for a signed link or an organisation API key."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from bot import cycles
from bot.analyse import organisation_redactor
from bot.api.cycle_access import readable_cycle
from bot.api.runner_log import runner_section
from bot.cycle_report import analyse_stored, report_for
from bot.links import signed_report_url
from bot.report.chart import SuitePoint
from bot.report.page import Successor, render_page
from bot.runtime import Runtime
from storage.models import Organization, TestCycle

CHART_CYCLES = 30
# Nothing external, no scripts: the page is data someone's test output helped write.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"


async def report_page(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        cycle = await readable_cycle(request, runtime, session)
        org = await session.get(Organization, cycle.org_id)
        assert org is not None
        analysis = await analyse_stored(session, cycle, await organisation_redactor(runtime, org))
        integration = org.integrations.get(cycle.source)
        public_url, keyring = runtime.settings.public_url, runtime.vault.keyring
        model = report_for(
            cycle,
            analysis,
            public_url,
            scm_base_url=integration.base_url if integration is not None else None,
            report_url=signed_report_url(public_url, keyring, cycle.id),
        )
        earlier = (
            await session.execute(
                select(TestCycle)
                .where(
                    TestCycle.org_id == cycle.org_id,
                    TestCycle.repository == cycle.repository,
                    TestCycle.suite == cycle.suite,
                    TestCycle.total > 0,
                    TestCycle.created_at <= cycle.created_at,
                )
                .order_by(TestCycle.created_at.desc())
                .limit(CHART_CYCLES)
            )
        ).scalars()
        chart = [
            SuitePoint(
                c.sha[:7], (c.passed + c.flaky) / max(1, c.total), c.duration, c.id == cycle.id
            )
            for c in reversed(list(earlier))
        ]
        successor = await _successor(runtime, session, cycle)
        runner = await runner_section(runtime, session, cycle, request.url.query)
    html = render_page(
        model,
        chart=chart,
        recent=analysis.history.recent,
        superseded_by=successor,
        publish_failures=cycles.publish_failures(cycle.published),
    )
    html = html.replace("</main>", runner + "</main>", 1)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, no-store",
        },
    )


async def _successor(runtime: Runtime, session: AsyncSession, cycle: TestCycle) -> Successor | None:
    """The cycle that superseded this one (a newer commit's, or a re-run's at this commit),
    with a link to its report (signed, like the links on check runs: whoever may read this
    cycle's report may read the PR's next)."""
    if not cycle.superseded_by:
        return None
    newer = await session.get(TestCycle, cycle.superseded_by)
    if newer is None or newer.org_id != cycle.org_id:
        return None
    url = signed_report_url(runtime.settings.public_url, runtime.vault.keyring, newer.id)
    return Successor(newer.id, newer.sha, url, newer.run_attempt)


ROUTES = [Route("/cycles/{cycle_id}", report_page)]
