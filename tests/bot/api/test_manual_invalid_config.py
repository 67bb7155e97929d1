"""``POST /api/v1/cycles/manual`` on a commit whose ``.aac.yml`` is broken: 422, no new cycle."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import TestCycle
from tests.bot.e2e.conftest import REPOSITORY, RunningBot, bot
from tests.bot.e2e.test_manual_start_api import SHA, run_key, seen_on_a_pull_request

__all__ = ["bot"]  # the running bot fixture (real HTTP against the fake GitHub)

BROKEN = b"""\
suites:
  - name: nightly
    triggers: [manual, on_push]
    run:
      command: make test
"""


async def test_a_broken_aac_yml_answers_422_invalid_config(bot: RunningBot) -> None:
    # The commit is one a pull request named (the manual start needs that); its .aac.yml is
    # then found broken when the manual start reads it.
    await seen_on_a_pull_request(bot)
    bot.github.add_contents(REPOSITORY, ".aac.yml", BROKEN, ref=SHA)
    async with bot.runtime.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(TestCycle))
    answer = await bot.http.post(
        f"{bot.url}/api/v1/cycles/manual",
        json={"source": "github", "repository": REPOSITORY, "sha": SHA, "suite": "nightly"},
        headers=await run_key(bot),  # the manual start needs the run scope
    )
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_config"
    # The caller is told which file at which commit, and where the details are.
    assert f".aac.yml at {SHA[:12]} is invalid" in body["detail"]
    assert "status says where" in body["detail"]
    async with bot.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TestCycle)) == before
