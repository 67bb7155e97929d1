"""A re-run at an older commit of a change, on both engines: the cycles of the commits pushed
after it keep running (their testing-node job too), and the sticky comment stays with them."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from bot import cycles
from bot.handlers import change, rerun
from bot.publish import comment_plan
from bot.runtime import Runtime
from providers.events import ChangeOpened, RerunRequested
from providers.gitlab.inbound import parse_event
from storage.models import RunnerJob, TestCycle
from tests.bot.handlers.test_gitlab_events import HOST, event_run, example
from tests.bot.handlers.test_manual_run import AAC_YML, finish, publish_jobs
from tests.fakes.provider import RecordingProvider

HEAD = "b" * 40


async def test_a_rerun_at_an_older_commit_leaves_the_heads_running_cycle_alone(
    runtime: Runtime,
) -> None:
    provider = RecordingProvider(writers={"dev"})
    run = await event_run(runtime, provider)
    opened = parse_event("Merge Request Hook", example("merge_request.open"), bot_logins=set())
    assert isinstance(opened, ChangeOpened)
    pushed = replace(opened, sha=HEAD)
    for event in (opened, pushed):
        provider.files[(event.repository, ".aac.yml", event.sha)] = AAC_YML
    await change.start_cycles(run, opened)
    async with runtime.sessions() as session:
        [old] = await cycles.cycles_for_commit(
            session, run.org_id, "gitlab", HOST, opened.repository, opened.sha
        )
    await finish(runtime, old.id)
    await change.start_cycles(run, pushed)  # commit B: its unit job is running on a node
    async with runtime.sessions.begin() as session:
        [head] = await cycles.cycles_for_commit(
            session, run.org_id, "gitlab", HOST, opened.repository, HEAD
        )
        job = (
            await session.execute(select(RunnerJob).where(RunnerJob.cycle_id == head.id))
        ).scalar_one()
        job.state = "running"
    head_publishes = await publish_jobs(runtime, head.id)

    # "Re-run" on commit A's check run.
    await rerun.handle(
        run,
        RerunRequested(source="gitlab", host=HOST, repository=opened.repository, cycle_id=old.id),
    )

    async with runtime.sessions() as session:
        rows = await session.execute(select(TestCycle).where(TestCycle.sha == opened.sha))
        fresh = max(rows.scalars(), key=lambda c: c.run_attempt)
        head_now = await session.get_one(TestCycle, head.id)
        job_now = await session.get_one(RunnerJob, job.id)
        plan = await comment_plan(session, fresh)
    assert (fresh.run_attempt, fresh.status) == (2, "collecting")
    assert (head_now.status, head_now.superseded_by) == ("collecting", None)
    assert job_now.state == "running"
    assert await publish_jobs(runtime, head.id) == head_publishes  # not shown superseded
    assert not plan.write  # the PR comment stays with commit B's cycle
