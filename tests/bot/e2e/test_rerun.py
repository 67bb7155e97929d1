"""``/aac rerun`` on a PR whose suites are re-run in different ways (real HTTP, worker, fake)."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from storage.models import Job, TestCycle
from tests.bot.e2e.conftest import (
    REPOSITORY,
    RunningBot,
    install,
    official_example,
    retarget,
    wait_for,
)
from tests.bot.e2e.test_github_flow import FAILING_JUNIT
from tests.bot.e2e.transactions import idle_in_transaction
from tests.fakes.github import Fault

SHA1 = "1" * 40
RUN_ID = 555
# "tests" is fed by `aac report`, "integration" by a workflow run's artifact.
TWO_SUITES = b"""\
version: 1
suites:
  - name: tests
    triggers: [pull_request]
  - name: integration
    triggers: [workflow_run]
"""


def _workflow_run() -> dict[str, Any]:
    payload = retarget(official_example("workflow_run.completed"))
    payload["workflow_run"].update(
        {
            "id": RUN_ID,
            "name": "CI",
            "head_sha": SHA1,
            "head_branch": "feature",
            "conclusion": "failure",
            "run_attempt": 1,
            "html_url": f"https://github.com/{REPOSITORY}/actions/runs/{RUN_ID}",
            "pull_requests": [{"number": 7, "base": {"ref": "main"}, "head": {"sha": SHA1}}],
        }
    )
    return payload


def _artifact_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("TEST-integration.xml", FAILING_JUNIT)
    return buffer.getvalue()


async def _jobs_done(bot: RunningBot) -> bool:
    async with bot.runtime.sessions() as session:
        statuses = (await session.execute(select(Job.status))).scalars().all()
        return bool(statuses) and set(statuses) == {"done"}


async def _analyse_jobs(bot: RunningBot) -> int:
    async with bot.runtime.sessions() as session:
        query = select(func.count()).select_from(Job).where(Job.kind == "analyse_cycle")
        return int((await session.execute(query)).scalar_one())


async def test_rerun_command_reanalyses_one_suite_and_reruns_the_others_workflow(
    bot: RunningBot, tmp_path: Path
) -> None:
    """The re-analysis is decided and committed before the workflow re-run is sent: that POST
    takes the installation's write slot, which on SQLite waited for the write lock the
    re-analysis held in the same job's transaction until "database is locked"; on PostgreSQL
    that transaction held the cycle's row lock until GitHub answered."""
    await install(bot)
    bot.github.add_contents(REPOSITORY, ".aac.yml", TWO_SUITES, ref=SHA1)
    bot.github.add_artifact(REPOSITORY, RUN_ID, "test-results", _artifact_zip())
    assert (await bot.deliver("workflow_run", _workflow_run())).status_code == 202
    await wait_for(lambda: _jobs_done(bot), what="the workflow run's suite to be reported")
    # The newer cycle, so the one the command handles first: re-analysed, not re-run.
    code, output = await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
    assert code == 0, output
    await wait_for(lambda: _jobs_done(bot), what="the reported suite to be published")
    async with bot.runtime.sessions() as session:
        cycles = (await session.execute(select(TestCycle).order_by(TestCycle.created_at))).all()
    assert [(c.suite, c.status) for (c,) in cycles] == [("integration", "done"), ("tests", "done")]
    assert await _analyse_jobs(bot) == 2

    bot.github.set_permission(REPOSITORY, "maintainer", "write")
    command = retarget(official_example("pull_request.opened"), sender="maintainer")
    command.update(
        {
            "action": "created",
            "issue": {"number": 7, "pull_request": {"url": "x"}},
            "comment": {"body": "/aac rerun", "user": {"login": "maintainer"}},
        }
    )
    bot.github.inject(Fault("slow", method="POST", path=r".*/actions/runs/\d+/rerun"))

    async def both_done() -> bool:
        return (
            bot.github.reruns == [(REPOSITORY, RUN_ID)]
            and await _analyse_jobs(bot) == 3
            and await _jobs_done(bot)
        )

    started = time.monotonic()
    async with idle_in_transaction(bot) as seen:
        assert (await bot.deliver("issue_comment", command)).status_code == 202
        await wait_for(both_done, timeout=8, what="the re-run and the re-analysis")
    assert time.monotonic() - started < 5
    assert seen == []
    async with bot.runtime.sessions() as session:
        attempts = (
            await session.execute(select(Job.attempts).where(Job.kind == "webhook_event"))
        ).scalars()
        assert max(attempts) == 1  # no retry after "database is locked"
