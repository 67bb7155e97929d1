"""The RERUN_ASKED mark of a re-run pipeline's cycle: set only once the SCM said it re-ran the
pipeline in place, so that a redelivery of the first run's hook is never a spurious attempt."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.handlers import pipeline, rerun
from bot.handlers.pipeline import RERUN_ASKED
from bot.runtime import Runtime
from providers.base import CaseOutcome, PipelineResults, ReportedCase
from providers.events import PipelineFinished, RerunRequested
from providers.gitlab.inbound import parse_event
from storage.models import TestCycle
from tests.bot.handlers.test_gitlab_events import HOST, event_run, example
from tests.fakes.provider import RecordingProvider

REPORT = PipelineResults(
    cases=(ReportedCase(suite="rspec", name="fails", outcome=CaseOutcome.FAILED),),
    origin="test_report",
)


async def _attempts(runtime: Runtime) -> list[TestCycle]:
    async with runtime.sessions() as session:
        query = select(TestCycle).order_by(TestCycle.run_attempt)
        return list((await session.execute(query)).scalars())


@pytest.mark.parametrize(
    ("in_place", "attempts"),
    [(True, [1, 2]), (False, [1])],
    ids=["in-place", "new-id-or-attempt"],
)
async def test_only_an_in_place_rerun_marks_its_cycle(
    runtime: Runtime, in_place: bool, attempts: list[int]
) -> None:
    # False is what GitHub (a numbered next attempt) and an Azure DevOps new build answer.
    provider = RecordingProvider(results={"31": REPORT}, reruns_in_place=in_place)
    run = await event_run(runtime, provider)
    finished = parse_event("Pipeline Hook", example("pipeline.success"), bot_logins=set())
    assert isinstance(finished, PipelineFinished)
    await pipeline.ingest(run, finished)
    [cycle] = await _attempts(runtime)

    asked = RerunRequested(source="gitlab", host=HOST, repository=cycle.repository, sha=cycle.sha)
    await rerun.handle(run, asked)
    assert ("rerun_pipeline", cycle.repository, "31") in provider.calls
    [marked] = await _attempts(runtime)
    assert (RERUN_ASKED in marked.context_extra) is in_place

    # The same finished hook again: the re-run's results only when it re-ran in place, else
    # a redelivery of the first run that opens no attempt.
    await pipeline.ingest(run, finished)
    assert [c.run_attempt for c in await _attempts(runtime)] == attempts
    assert all(RERUN_ASKED not in c.context_extra for c in await _attempts(runtime))
