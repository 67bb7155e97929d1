"""No database transaction stays open while GitHub answers slowly (PostgreSQL, where such a
session shows as "idle in transaction" and holds its snapshot and locks that long)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests.bot.e2e.conftest import (
    REPOSITORY,
    RunningBot,
    install,
    official_example,
    pull_request,
    retarget,
    wait_for,
)
from tests.bot.e2e.test_github_flow import FAILING_JUNIT
from tests.bot.e2e.transactions import idle_in_transaction
from tests.fakes.github import Fault

SHA1 = "1" * 40
SLOW = 2.0


def _postgresql_only(bot: RunningBot) -> None:
    if bot.runtime.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL shows a session idle in a transaction")


def _received(bot: RunningBot, fragment: str) -> bool:
    return any(fragment in r.path for r in bot.github.requests)


async def test_the_tree_is_read_with_no_transaction_open(bot: RunningBot, tmp_path: Path) -> None:
    """Publishing a report with annotations lists the repository's files first."""
    _postgresql_only(bot)
    await install(bot)
    await bot.deliver("pull_request", pull_request("opened", 7, SHA1))
    await wait_for(lambda: bool(bot.github.check_runs), what="the queued check run")
    bot.github.add_tree(REPOSITORY, SHA1, ["tests/test_api.py", "README.md"])
    bot.github.inject(Fault("slow", method="GET", path=r".*/git/trees/.*", delay=SLOW))
    async with idle_in_transaction(bot) as seen:
        code, output = await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
        assert code == 0, output
        [run] = bot.github.check_runs.values()
        await wait_for(lambda: run.status == "completed", what="the report")
    assert _received(bot, "/git/trees/")
    assert seen == []
    assert {a["path"] for a in run.annotations} == {"tests/test_api.py"}


def _artifact_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("TEST-api.xml", FAILING_JUNIT)
    return buffer.getvalue()


async def test_artifacts_are_downloaded_with_no_transaction_open(bot: RunningBot) -> None:
    """A finished workflow run: .aac.yml read, artifacts listed and downloaded, then stored."""
    _postgresql_only(bot)
    await install(bot)
    bot.github.add_artifact(REPOSITORY, 555, "test-results", _artifact_zip())
    bot.github.inject(Fault("slow", method="GET", path=r".*/actions/artifacts/\d+/zip", delay=SLOW))
    payload = retarget(official_example("workflow_run.completed"))
    payload["workflow_run"].update(
        {
            "id": 555,
            "name": "CI",
            "head_sha": SHA1,
            "conclusion": "failure",
            "run_attempt": 1,
            "pull_requests": [{"number": 7, "base": {"ref": "main"}, "head": {"sha": SHA1}}],
        }
    )
    async with idle_in_transaction(bot) as seen:
        assert (await bot.deliver("workflow_run", payload)).status_code == 202
        await wait_for(
            lambda: any(r.status == "completed" for r in bot.github.check_runs.values()),
            what="the check run from the artifact",
        )
    assert _received(bot, "/zip")
    assert seen == []
