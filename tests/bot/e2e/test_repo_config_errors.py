"""An invalid ``.aac.yml`` is reported on the commit, not just logged (real HTTP, worker, fake)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.models import Job, TestCycle
from tests.bot.e2e.conftest import (
    REPOSITORY,
    RunningBot,
    install,
    official_example,
    pull_request,
    retarget,
    wait_for,
)
from tests.fakes.github import CheckRun

SHA1 = "1" * 40
SHA2 = "2" * 40
CONFIG_CHECK = "aac-bot: configuration"
INVALID = b"""\
version: 1
suites:
  - name: unit
    triggers: [pull_request, on_push]
"""
VALID = b"""\
version: 1
suites:
  - name: unit
    triggers: [pull_request]
"""


def _runs(bot: RunningBot, sha: str, name: str | None = None) -> list[CheckRun]:
    return [
        r
        for r in bot.github.check_runs.values()
        if r.head_sha == sha and (name is None or r.name == name)
    ]


def _check_run_writes(bot: RunningBot) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in bot.github.writes() if "/check-runs" in r.path]


async def _jobs_done(bot: RunningBot) -> bool:
    async with bot.runtime.sessions() as session:
        statuses = (await session.execute(select(Job.status))).scalars().all()
        return bool(statuses) and set(statuses) == {"done"}


async def _cycles(bot: RunningBot) -> list[TestCycle]:
    async with bot.runtime.sessions() as session:
        return list((await session.execute(select(TestCycle))).scalars())


def _workflow_run(run_id: int, sha: str) -> dict[str, Any]:
    payload = retarget(official_example("workflow_run.completed"))
    payload["workflow_run"].update(
        {
            "id": run_id,
            "name": "CI",
            "head_sha": sha,
            "head_branch": "feature",
            "conclusion": "success",
            "run_attempt": 1,
            "html_url": f"https://github.com/{REPOSITORY}/actions/runs/{run_id}",
            "pull_requests": [{"number": 7, "base": {"ref": "main"}, "head": {"sha": sha}}],
        }
    )
    return payload


async def test_invalid_config_fails_a_check_and_a_fixed_push_starts_the_suites(
    bot: RunningBot,
) -> None:
    await install(bot)
    bot.github.add_contents(REPOSITORY, ".aac.yml", INVALID, ref=SHA1)
    assert (await bot.deliver("pull_request", pull_request("opened", 7, SHA1))).status_code == 202
    await wait_for(lambda: bool(_runs(bot, SHA1)), what="the configuration check run")
    [run] = _runs(bot, SHA1)
    assert (run.name, run.status, run.conclusion) == (CONFIG_CHECK, "completed", "failure")
    assert run.output["title"] == "Invalid .aac.yml"
    summary = run.output["summary"]
    assert "is invalid, so no test suites were started" in summary
    problem = "**line 4, suites\\[0\\].triggers\\[1\\]**: unknown trigger; use pull\\_request"
    assert problem in summary
    assert "push a new commit" in summary
    # The details link opens the offending line of the file at that commit.
    assert run.details_url == f"{bot.github.url}/{REPOSITORY}/blob/{SHA1}/.aac.yml#L4"
    await wait_for(lambda: _jobs_done(bot), what="the delivery to be processed")
    assert await _cycles(bot) == []  # no suite started on a file the bot cannot read
    assert bot.github.statuses == []  # an App publishes check runs, not commit statuses

    # The author fixes the file: the next commit gets its suites and no configuration check.
    bot.github.add_contents(REPOSITORY, ".aac.yml", VALID, ref=SHA2)
    synchronize = pull_request("synchronize", 7, SHA2)
    assert (await bot.deliver("pull_request", synchronize)).status_code == 202
    await wait_for(lambda: bool(_runs(bot, SHA2)), what="the new commit's queued check run")
    await wait_for(lambda: _jobs_done(bot), what="every job to finish")
    [queued] = _runs(bot, SHA2)
    assert (queued.name, queued.status) == ("aac / unit", "queued")
    assert [(c.sha, c.suite) for c in await _cycles(bot)] == [(SHA2, "unit")]
    # Nothing stale: the old commit's check run was written once and never touched again.
    assert [w for w in _check_run_writes(bot) if w[0] == "PATCH"] == []
    assert _runs(bot, SHA1) == [run]
    assert (run.status, run.conclusion) == ("completed", "failure")


async def test_workflow_run_reports_the_invalid_config_once_per_commit(bot: RunningBot) -> None:
    await install(bot)
    bot.github.add_contents(REPOSITORY, ".aac.yml", INVALID, ref=SHA1)
    bot.github.add_artifact(REPOSITORY, 555, "test-results", b"PK\x05\x06" + b"\0" * 18)
    assert (await bot.deliver("workflow_run", _workflow_run(555, SHA1))).status_code == 202
    await wait_for(lambda: bool(_runs(bot, SHA1)), what="the configuration check run")
    await wait_for(lambda: _jobs_done(bot), what="the delivery to be processed")
    [run] = _runs(bot, SHA1)
    assert (run.name, run.conclusion) == (CONFIG_CHECK, "failure")
    assert "suites\\[0\\].triggers\\[1\\]" in run.output["summary"]
    assert not [r for r in bot.github.requests if "/artifacts" in r.path]  # nothing ingested
    assert await _cycles(bot) == []

    # The pull request event for the same commit (and another workflow) update that run.
    await bot.deliver("pull_request", pull_request("opened", 7, SHA1))
    await bot.deliver("workflow_run", _workflow_run(556, SHA1))

    async def three_updates() -> bool:
        return len(_check_run_writes(bot)) == 3 and await _jobs_done(bot)

    await wait_for(three_updates, what="both later events to update the same check run")
    assert [m for m, _ in _check_run_writes(bot)] == ["POST", "PATCH", "PATCH"]
    assert _runs(bot, SHA1) == [run]
    assert run.conclusion == "failure"
