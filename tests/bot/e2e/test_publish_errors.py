"""Error classes decide what happens to a publish job, end to end against the fake GitHub:
a 404 stops at once and is recorded on the cycle (JSON and report page); a 502 is retried."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from storage.models import Job, TestCycle
from tests.bot.e2e.conftest import RunningBot, install, pull_request, wait_for
from tests.bot.e2e.test_github_flow import FAILING_JUNIT, SHA1, _our_comments, _runs
from tests.fakes.github import Fault

COMMENTS = r".*/issues/\d+/comments"


async def _publish_jobs(bot: RunningBot) -> list[Job]:
    async with bot.runtime.sessions() as session:
        query = select(Job).where(Job.kind == "publish_cycle").order_by(Job.id)
        return list((await session.execute(query)).scalars())


async def _reported(bot: RunningBot, tmp_path: Path) -> None:
    await install(bot)
    await bot.deliver("pull_request", pull_request("opened", 7, SHA1))
    await wait_for(lambda: len(_runs(bot, SHA1)) == 1, what="queued run")
    code, output = await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
    assert code == 0, output


async def test_a_not_found_comment_stops_the_job_and_is_recorded(
    bot: RunningBot, tmp_path: Path
) -> None:
    bot.github.inject(Fault("not_found", method="POST", path=COMMENTS, times=100))
    await _reported(bot, tmp_path)

    async def dead() -> bool:
        return any(job.status == "dead" for job in await _publish_jobs(bot))

    await wait_for(dead, timeout=30, what="the publish job to stop")
    [stopped] = [job for job in await _publish_jobs(bot) if job.status == "dead"]
    assert stopped.attempts == 1  # not retried: the same request gets the same 404
    assert "NotFound" in (stopped.last_error or "")
    posts = [r for r in bot.github.requests if r.method == "POST" and r.path.endswith("/comments")]
    assert len(posts) == 1
    [run] = _runs(bot, SHA1)
    assert run.status == "completed"  # the check run went out before the comment failed

    async with bot.runtime.sessions() as session:
        cycle = (await session.execute(select(TestCycle))).scalar_one()
    shown = (
        await bot.http.get(
            f"{bot.url}/api/v1/cycles/{cycle.id}",
            headers={"Authorization": f"Bearer {bot.api_key}"},
        )
    ).json()
    comment = shown["published"]["comment"]
    assert comment["attempted"] is True
    assert comment["succeeded"] is False
    assert comment["reason"].startswith("NotFound")
    assert shown["published"]["status"]["succeeded"] is True
    page = await bot.http.get(
        f"{bot.url}/cycles/{cycle.id}", headers={"Authorization": f"Bearer {bot.api_key}"}
    )
    assert 'id="publish-failures"' in page.text
    assert "comment: NotFound" in page.text


async def test_a_bad_gateway_is_retried_until_the_comment_is_posted(
    bot: RunningBot, tmp_path: Path
) -> None:
    bot.github.inject(Fault("server_error", method="POST", path=COMMENTS, times=1))
    await _reported(bot, tmp_path)
    await wait_for(lambda: len(_our_comments(bot)) == 1, timeout=30, what="the comment")

    async def settled() -> bool:
        return {job.status for job in await _publish_jobs(bot)} == {"done"}

    await wait_for(settled, timeout=30, what="every publish job done")
    async with bot.runtime.sessions() as session:
        cycle = (await session.execute(select(TestCycle))).scalar_one()
    assert cycle.published["comment"]["succeeded"] is True
    assert cycle.published["comment"]["reason"] is None
