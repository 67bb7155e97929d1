"""Annotations land on the repository's own paths (real HTTP, the worker, the fake GitHub)."""

from __future__ import annotations

from pathlib import Path

from storage import orgs
from tests.bot.e2e.conftest import REPOSITORY, RunningBot, install, pull_request, wait_for
from tests.github_constants import OWNER, PAT

SHA = "3" * 40
# A Maven multi-module layout with two FooTest.java: only the frame's package tells them apart.
TREE = (
    "pom.xml",
    "core/pom.xml",
    "core/src/main/java/com/example/Calculator.java",
    "core/src/test/java/com/example/FooTest.java",
    "legacy/src/test/java/com/example/legacy/FooTest.java",
    ".github/workflows/ci.yml",
)
# Surefire's report: the failing frame names only FooTest.java:42, no directory.
SUREFIRE = (Path(__file__).parent / "fixtures" / "TEST-com.example.FooTest.xml").read_bytes()


def _tree_reads(bot: RunningBot) -> list[str]:
    return [r.path for r in bot.github.requests if "/git/trees/" in r.path]


async def test_bare_java_file_name_is_annotated_at_its_repository_path(
    bot: RunningBot, tmp_path: Path
) -> None:
    await install(bot)
    bot.github.add_tree(REPOSITORY, SHA, TREE)
    assert (await bot.deliver("pull_request", pull_request("opened", 12, SHA))).status_code == 202
    await wait_for(lambda: len(bot.github.check_runs) == 1, what="the queued check run")

    code, output = await bot.report(tmp_path, sha=SHA, pr=12, junit=SUREFIRE)
    assert code == 0, output
    [run] = bot.github.check_runs.values()
    await wait_for(lambda: run.status == "completed", what="the completed check run")
    assert [(a["path"], a["start_line"], a["end_line"]) for a in run.annotations] == [
        ("core/src/test/java/com/example/FooTest.java", 42, 42)
    ]
    assert run.annotations[0]["title"] == "com.example.FooTest::adds failed"
    # The failure in a generated file has no annotation, but the summary still lists it.
    assert "parses" in str(run.output["summary"])
    assert _tree_reads(bot) == [f"/repos/{REPOSITORY}/git/trees/{SHA}"]


async def test_token_mode_publishes_a_status_without_reading_the_tree(
    bot: RunningBot, tmp_path: Path
) -> None:
    async with bot.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, OWNER)
        await orgs.set_integration(
            session, bot.runtime.vault, org, "github", token=PAT, base_url=bot.github.url
        )
    bot.github.add_tree(REPOSITORY, SHA, TREE)

    code, output = await bot.report(tmp_path, sha=SHA, pr=12, junit=SUREFIRE)
    assert code == 0, output

    def failed() -> bool:
        return any(s["state"] == "failure" for s in bot.github.statuses if s["sha"] == SHA)

    await wait_for(failed, what="the failed commit status")
    assert bot.github.check_runs == {}
    assert _tree_reads(bot) == []


async def test_passing_cycle_reads_no_tree(bot: RunningBot, tmp_path: Path) -> None:
    await install(bot)
    bot.github.add_tree(REPOSITORY, SHA, TREE)
    passing = SUREFIRE.split(b"<testcase", 1)[0] + b'<testcase name="adds"/></testsuite>\n'
    code, output = await bot.report(tmp_path, sha=SHA, pr=12, junit=passing)
    assert code == 0, output
    await wait_for(
        lambda: any(r.conclusion == "success" for r in bot.github.check_runs.values()),
        what="the successful check run",
    )
    assert _tree_reads(bot) == []
