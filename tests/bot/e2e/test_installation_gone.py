"""An App uninstalled without the bot hearing of it: GitHub answers 404 to its token, and to
the App's own ``GET /app/installations/{id}``.

The job that meets it is parked dead at once (no retries), the installation is marked deleted,
later cycles publish nowhere with a reason that says why, and an ``installation created``
event brings it back. A token 404 for an installation GitHub still knows is a glitch: the job
retries and nothing is marked.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.cycles import PUBLISH_JOB
from bot.webhooks.intake import WEBHOOK_JOB
from storage.models import Installation, Job, TestCycle
from tests.bot.e2e.conftest import RunningBot, install, pull_request, wait_for
from tests.bot.e2e.test_github_flow import FAILING_JUNIT
from tests.fakes.github import Fault
from tests.github_constants import INSTALLATION_ID, OWNER

SHA1 = "1" * 40
SHA2 = "2" * 40
SHA3 = "3" * 40
MINT = f"/app/installations/{INSTALLATION_ID}/access_tokens"
READ = f"/app/installations/{INSTALLATION_ID}"


async def _jobs(bot: RunningBot, kind: str) -> list[Job]:
    async with bot.runtime.sessions() as session:
        query = select(Job).where(Job.kind == kind).order_by(Job.id)
        return list((await session.execute(query)).scalars())


async def _installation(bot: RunningBot) -> Installation:
    async with bot.runtime.sessions() as session:
        return (await session.execute(select(Installation))).scalar_one()


async def test_a_404_on_the_token_marks_the_installation_gone(
    bot: RunningBot, tmp_path: Path
) -> None:
    await install(bot)
    bot.github.uninstall(INSTALLATION_ID)
    assert (await bot.deliver("pull_request", pull_request("opened", 7, SHA1))).status_code == 202

    async def webhook_job_finished() -> bool:
        jobs = await _jobs(bot, WEBHOOK_JOB)
        return len(jobs) == 2 and jobs[-1].status in ("done", "dead")

    await wait_for(webhook_job_finished, what="the pull request's webhook job to end")
    job = (await _jobs(bot, WEBHOOK_JOB))[-1]
    assert (job.status, job.attempts) == ("dead", 1)  # at once, not after five attempts
    assert f"installation {INSTALLATION_ID} is gone" in (job.last_error or "")
    assert (await _installation(bot)).deleted_at is not None
    assert len([r for r in bot.github.requests if r.path == MINT]) == 1
    [confirmed] = [r for r in bot.github.requests if r.path == READ]
    assert (confirmed.credential, confirmed.status) == ("jwt", 404)

    # A later cycle for the repository (from `aac report`) publishes nowhere, and says why.
    code, output = await bot.report(tmp_path, sha=SHA2, pr=7, junit=FAILING_JUNIT)
    assert code == 0, output

    async def published() -> bool:
        jobs = await _jobs(bot, PUBLISH_JOB)
        return bool(jobs) and all(j.status in ("done", "dead") for j in jobs)

    await wait_for(published, what="the report's publish jobs to end")
    assert {j.status for j in await _jobs(bot, PUBLISH_JOB)} == {"done"}
    async with bot.runtime.sessions() as session:
        cycle = (await session.execute(select(TestCycle))).scalar_one()
    status = cycle.published["status"]
    assert status["attempted"] is False
    assert f"installation {INSTALLATION_ID}" in status["reason"]
    assert "is gone" in status["reason"]
    assert len([r for r in bot.github.requests if r.path == MINT]) == 1  # nothing more asked

    # Installed again: the installation is live and publishes.
    bot.github.installations[INSTALLATION_ID] = OWNER
    await install(bot)  # returns at once: the row is still linked

    async def revived() -> bool:
        return (await _installation(bot)).deleted_at is None

    await wait_for(revived, what="the installation created event to revive it")
    assert (await bot.deliver("pull_request", pull_request("opened", 8, SHA3))).status_code == 202
    await wait_for(
        lambda: any(r.head_sha == SHA3 for r in bot.github.check_runs.values()),
        what="a queued check run once installed again",
    )


async def test_a_404_on_the_token_of_an_installation_github_knows_is_retried(
    bot: RunningBot,
) -> None:
    """Three token 404s (every try of the first attempt) while ``GET /app/installations/{id}``
    still answers: the job fails as a transient error, runs again and opens the check run."""
    await install(bot)
    bot.github.inject(Fault("not_found", "POST", MINT, times=3))
    assert (await bot.deliver("pull_request", pull_request("opened", 7, SHA1))).status_code == 202
    await wait_for(
        lambda: any(r.head_sha == SHA1 for r in bot.github.check_runs.values()),
        timeout=30,
        what="a queued check run once the token is minted",
    )
    job = (await _jobs(bot, WEBHOOK_JOB))[-1]
    assert (job.status, job.attempts) == ("done", 2)
    assert "still knows the installation" in (job.last_error or "")
    assert (await _installation(bot)).deleted_at is None
    reads = [r for r in bot.github.requests if r.path == READ]
    assert [(r.credential, r.status) for r in reads] == [("jwt", 200)] * 3
