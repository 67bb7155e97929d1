"""Publishers of one cycle overlapping: the analysis' "in progress" and the publish jobs (real
HTTP, the real worker, the fake GitHub and a slow fake model)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from storage.models import Job
from tests.bot.e2e.conftest import RunningBot, install, pull_request, slow_model, wait_for
from tests.bot.e2e.test_github_flow import FAILING_JUNIT
from tests.fakes.github import CheckRun, Fault

SHA1 = "1" * 40


def _runs(bot: RunningBot) -> list[CheckRun]:
    return [r for r in bot.github.check_runs.values() if r.head_sha == SHA1]


def _received(bot: RunningBot, method: str, suffix: str) -> int:
    return len([r for r in bot.github.requests if r.method == method and r.path.endswith(suffix)])


async def _jobs_done(bot: RunningBot, kind: str | None = None) -> bool:
    query = select(Job.status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    async with bot.runtime.sessions() as session:
        statuses = (await session.execute(query)).scalars().all()
        return bool(statuses) and set(statuses) == {"done"}


async def test_closing_the_pr_while_in_progress_is_being_shown_completes_the_check(
    bot: RunningBot, tmp_path: Path
) -> None:
    """The announce saw "analysing", then the PR was closed and its publish job completed the
    check run as cancelled; the announce's update, still on its way, must not land after that
    one (the analysis then ends without publishing: the cycle is no longer analysing)."""
    with slow_model(bot) as llm:
        await install(bot)
        await bot.deliver("pull_request", pull_request("opened", 7, SHA1))
        await wait_for(lambda: _jobs_done(bot), what="the queued check run to be stored")
        [run] = _runs(bot)
        # The announce reads the stored run back before updating it; that answer is late.
        bot.github.inject(
            Fault("slow", method="GET", path=rf".*/check-runs/{run.id}", delay=2.0, late=True)
        )
        reporting = asyncio.create_task(bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT))
        await wait_for(
            lambda: _received(bot, "GET", f"/check-runs/{run.id}") == 1, what="the announce"
        )
        await bot.deliver("pull_request", pull_request("closed", 7, SHA1))
        await wait_for(lambda: run.status == "completed", what="the cancelled check run")
        await wait_for(
            lambda: _jobs_done(bot, "publish_cycle"), timeout=10, what="the close to be published"
        )
        llm.release()
        await asyncio.wait_for(reporting, 30)
    await wait_for(lambda: _jobs_done(bot), what="the analysis to end")
    assert (run.status, run.conclusion) == ("completed", "cancelled")
    assert run.states == ["queued", "in_progress", "completed"]
    assert _runs(bot) == [run]


async def test_a_late_publish_job_and_the_announce_make_one_check_run(
    bot: RunningBot, tmp_path: Path
) -> None:
    """The PR's first publish job is still looking for a check run to update when the analysis
    announces "in progress": neither has one stored, and both used to create one."""
    with slow_model(bot) as llm:
        await install(bot)
        bot.github.inject(
            Fault("slow", method="GET", path=r".*/commits/\w+/check-runs", delay=4.0, late=True)
        )
        await bot.deliver("pull_request", pull_request("opened", 7, SHA1))
        await wait_for(
            lambda: _received(bot, "GET", "/check-runs") == 1, what="the queued run's lookup"
        )
        assert _runs(bot) == []
        reporting = asyncio.create_task(bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT))
        await wait_for(lambda: len(llm.requests) == 1, what="the model to be asked")
        await wait_for(
            lambda: any(r.status == "in_progress" for r in _runs(bot)), what="in progress"
        )
        llm.release()
        code, output = await asyncio.wait_for(reporting, 30)
        assert code == 0, output
    await wait_for(lambda: _jobs_done(bot), what="every job to finish")
    [run] = _runs(bot)
    assert run.states == ["queued", "in_progress", "completed"]
    assert run.conclusion == "failure"
