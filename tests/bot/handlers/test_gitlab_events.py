"""GitLab's events through the neutral handlers, with the provider handed in (the handlers
construct nothing): merge requests open and supersede cycles, close cancels them, a finished
pipeline's test report completes them, and ``/aac`` notes act only for those who may."""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers import change, pipeline, rerun
from bot.handlers.context import EventRun, HandlerContext
from bot.runtime import Runtime
from providers.base import CaseOutcome, PipelineResults, ReportedCase
from providers.events import ChangeOpened, ChangeUpdated
from providers.factory import ProviderShared
from providers.gitlab.inbound import parse_event
from providers.registry import EventScope
from storage import orgs
from storage.models import Job, TestCycle, TestResultRow
from tests.fakes.provider import RecordingProvider

T = TypeVar("T")
FIXTURES = Path(__file__).parents[2] / "fixtures" / "gitlab" / "webhooks"
HOST = "gitlab.example.com"
REPO = "gitlabhq/gitlab-test"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


async def event_run(runtime: Runtime, provider: RecordingProvider) -> EventRun:
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")

    async def write(
        apply: Callable[[AsyncSession], Awaitable[T]], *, only_if_done: bool = False
    ) -> T:
        async with runtime.sessions.begin() as session:
            return await apply(session)

    scope = EventScope(org, HOST)
    return EventRun(HandlerContext(runtime, ProviderShared()), write, scope, provider)


async def cycles_by_sha(runtime: Runtime) -> dict[str, TestCycle]:
    async with runtime.sessions() as session:
        rows = (await session.execute(select(TestCycle))).scalars()
        return {row.sha: row for row in rows}


async def test_merge_requests_open_supersede_and_cancel_gitlab_cycles(runtime: Runtime) -> None:
    provider = RecordingProvider()
    run = await event_run(runtime, provider)
    opened = parse_event("Merge Request Hook", example("merge_request.open"), bot_logins=set())
    assert isinstance(opened, ChangeOpened)
    await change.start_cycles(run, opened)
    # .aac.yml was read at the head commit through the provider.
    assert ("get_file", REPO, ".aac.yml", opened.sha) in provider.calls
    [first] = (await cycles_by_sha(runtime)).values()
    assert (first.source, first.host, first.repository, first.pr) == ("gitlab", HOST, REPO, 1)
    # No GitHub installation in a GitLab cycle; where its code lives, for the fork rule.
    assert first.context_extra == {
        "from_fork": False,
        "head_repository": "awesome_space/awesome_project",
    }

    pushed_payload = example("merge_request.open")
    attrs = pushed_payload["object_attributes"]
    attrs["action"], attrs["oldrev"] = "update", attrs["last_commit"]["id"]
    attrs["last_commit"]["id"] = "b" * 40
    pushed = parse_event("Merge Request Hook", pushed_payload, bot_logins=set())
    assert isinstance(pushed, ChangeUpdated)
    await change.start_cycles(run, pushed)
    cycles = await cycles_by_sha(runtime)
    assert cycles[first.sha].status == "superseded"
    assert cycles["b" * 40].status == "collecting"

    closed_payload = copy.deepcopy(pushed_payload)
    closed_payload["object_attributes"]["action"] = "merge"
    await change.cancel_cycles(
        run, parse_event("Merge Request Hook", closed_payload, bot_logins=set())
    )
    assert (await cycles_by_sha(runtime))["b" * 40].status == "cancelled"


async def test_a_draft_opens_nothing_by_default(runtime: Runtime) -> None:
    run = await event_run(runtime, RecordingProvider())
    payload = example("merge_request.open")
    payload["object_attributes"]["draft"] = True
    await change.start_cycles(run, parse_event("Merge Request Hook", payload, bot_logins=set()))
    assert await cycles_by_sha(runtime) == {}


async def test_a_finished_pipeline_completes_its_cycle_from_the_test_report(
    runtime: Runtime,
) -> None:
    payload = example("pipeline.success")
    case = ReportedCase(
        suite="rspec",
        name="fails",
        classname="Spec",
        outcome=CaseOutcome.FAILED,
        duration_seconds=0.5,
        message="expected 1, got 2",
        trace="spec.rb:3",
    )
    report = PipelineResults(
        cases=(ReportedCase(suite="rspec", name="passes"), case), origin="test_report"
    )
    provider = RecordingProvider(results={"31": report})
    run = await event_run(runtime, provider)
    finished = parse_event("Pipeline Hook", payload, bot_logins=set())
    await pipeline.ingest(run, finished)
    [cycle] = (await cycles_by_sha(runtime)).values()
    assert (cycle.source, cycle.host, cycle.pipeline_id, cycle.pr) == ("gitlab", HOST, "31", 1)
    assert (cycle.status, cycle.total, cycle.failed, cycle.passed) == ("analysing", 2, 1, 1)
    async with runtime.sessions() as session:
        rows = (await session.execute(select(TestResultRow).order_by(TestResultRow.id))).scalars()
        stored = [(r.name, r.status, r.message, r.stack_trace) for r in rows]
    assert stored == [
        ("passes", "passed", None, None),
        ("fails", "failed", "expected 1, got 2", "spec.rb:3"),
    ]


async def test_aac_notes_act_only_for_developers_and_never_for_the_bot(runtime: Runtime) -> None:
    provider = RecordingProvider(writers={"root", "aac-bot"})
    run = await event_run(runtime, provider)
    await change.start_cycles(
        run, parse_event("Merge Request Hook", example("merge_request.open"), bot_logins=set())
    )
    async with runtime.sessions.begin() as session:
        cycle = (await session.execute(select(TestCycle))).scalar_one()
        cycle.status = "done"
        cycle.repository = REPO
    note = example("note.merge_request")
    note["project"]["path_with_namespace"] = REPO
    note["object_attributes"]["note"] = "/aac reanalyse"

    async def analyse_jobs() -> int:
        async with runtime.sessions() as session:
            jobs = (await session.execute(select(Job).where(Job.kind == "analyse_cycle"))).all()
            return len(jobs)

    guest = copy.deepcopy(note)
    guest["user"]["username"] = "guest"
    await rerun.handle(run, parse_event("Note Hook", guest, bot_logins=set()))
    assert await analyse_jobs() == 0
    assert provider.calls[-1] == ("refuse_command", "1", "guest", "reanalyse")  # told who may
    bot = copy.deepcopy(note)
    bot["user"]["username"] = "aac-bot"  # may write, but it is the bot's own note
    await rerun.handle(run, parse_event("Note Hook", bot, bot_logins=set()))
    assert await analyse_jobs() == 0
    await rerun.handle(run, parse_event("Note Hook", note, bot_logins=set()))
    assert await analyse_jobs() == 1
    assert ("may_run_commands", REPO, "root") in provider.calls
