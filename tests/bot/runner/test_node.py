"""Testing nodes end to end: real git, real `aac runner` processes, the real app and worker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from storage import orgs, runners
from tests.bot.e2e.conftest import RunningBot, install, wait_for
from tests.bot.runner.conftest import (
    PYTEST,
    TESTS,
    GitRepo,
    Nodes,
    aac_yml,
    completed_check_run,
    cycle_of,
    job_of,
    pid_alive,
    set_runner_policy,
    start_cycle,
    wait_for_analysis,
    wait_for_file,
    wait_for_state,
)
from tests.bot.test_cli import aac
from tests.conftest import TEST_KEYS
from tests.github_constants import OWNER

PARTIAL_JUNIT = """\
<testsuite name="unit" tests="2" failures="1">
  <testcase classname="tests.test_math" name="test_adds" time="0.1"/>
  <testcase classname="tests.test_math" name="test_subtracts" time="0.1">
    <failure message="arithmetic is broken">AssertionError: arithmetic is broken</failure>
  </testcase>
</testsuite>
"""


async def test_a_node_checks_out_the_sha_runs_pytest_and_the_cycle_is_published(
    bot: RunningBot, repo: GitRepo, nodes: Nodes
) -> None:
    await install(bot)
    sha = repo.commit({"tests/test_math.py": TESTS, ".aac.yml": aac_yml(PYTEST)})
    # A newer commit on the branch: the node must check out the cycle's sha, not the tip.
    repo.commit({"tests/test_math.py": TESTS.replace("== 1,", "== 2,")}, "fix")
    nodes.start("node-a")
    cycle_id = await start_cycle(bot, repo, sha)

    await wait_for_analysis(bot, cycle_id, 90)
    cycle = await cycle_of(bot, cycle_id)
    assert (cycle.total, cycle.passed, cycle.failed) == (2, 1, 1)
    assert cycle.exit_code == 1
    job = await job_of(bot, cycle_id)
    assert (job.state, job.runner_name, job.attempts, job.exit_code) == ("done", "node-a", 1, 1)
    assert job.command_started_at is not None

    run = await completed_check_run(bot, sha)
    assert run.conclusion == "failure"

    # The operator's view: the page's section and the whole log, both behind the page's auth.
    headers = {"Authorization": f"Bearer {bot.api_key}"}
    page = await bot.http.get(f"{bot.url}/cycles/{cycle_id}", headers=headers)
    assert page.status_code == 200
    assert "Testing node" in page.text
    assert "node-a" in page.text
    log = await bot.http.get(f"{bot.url}/cycles/{cycle_id}/log", headers=headers)
    assert log.status_code == 200
    assert "1 failed, 1 passed" in log.text
    assert (await bot.http.get(f"{bot.url}/cycles/{cycle_id}/log")).status_code == 403
    finished = f"job {job.id} finished: exit code 1"
    await wait_for(lambda: finished in nodes.output("node-a"), 10, "the node's last line")
    out = nodes.output("node-a")
    assert f"job {job.id} taken" in out
    assert f"job {job.id}: uploading 1 result file(s)" in out


async def test_a_hanging_command_is_killed_at_its_timeout(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, tmp_path: Path
) -> None:
    await install(bot)
    pid_file = tmp_path / "hang.pid"
    # The suite writes part of its results, then hangs. The shell's child sleeps too: the
    # whole process group has to go, not just the leader.
    command = f"mkdir -p out; cp partial.xml out/junit.xml; sleep 300 & echo $! > {pid_file}; wait"
    sha = repo.commit({".aac.yml": aac_yml(command, timeout=2), "partial.xml": PARTIAL_JUNIT})
    nodes.start("node-t")
    cycle_id = await start_cycle(bot, repo, sha)
    child = int(await wait_for_file(pid_file))
    await wait_for_state(bot, cycle_id, "timed_out", timeout=30)
    job = await job_of(bot, cycle_id)
    assert job.reason == "timed out after 2 s; killed"
    assert not pid_alive(child)
    async with bot.runtime.sessions() as session:
        assert "[aac] timed out after 2 s" in await runners.read_log(session, job.id)
    line = f"job {job.id} timed out after 2 s"
    await wait_for(lambda: line in nodes.output("node-t"), 10, "the node's line")

    # The PR author sees a timeout, with the results uploaded before the kill.
    run = await completed_check_run(bot, sha)
    cycle = await cycle_of(bot, cycle_id)
    assert (cycle.outcome, cycle.timeout_seconds, cycle.total) == ("timed_out", 2, 2)
    assert run.conclusion == "timed_out"
    assert run.output["title"].startswith("Timed out after 2 s · 1 failed, 1 passed")
    assert (
        "The testing node killed the command at the suite's timeout (2 s)."
        in (run.output["summary"])
    )
    assert "The 2 test results uploaded before the kill were kept" in run.output["summary"]


async def test_a_superseded_cycle_is_cancelled_and_its_process_gone_within_5_s(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, tmp_path: Path
) -> None:
    pid_file = tmp_path / "long.pid"
    sha = repo.commit({".aac.yml": aac_yml(f"echo $$ > {pid_file}; exec sleep 300")})
    nodes.start("node-c")
    old = await start_cycle(bot, repo, sha, pr=9)
    leader = int(await wait_for_file(pid_file))
    newer = repo.commit({"README": "new push"})
    started = time.monotonic()
    await start_cycle(bot, repo, newer, pr=9)  # a newer push to the same PR
    while pid_alive(leader) and time.monotonic() - started < 5:
        await asyncio.sleep(0.05)
    assert not pid_alive(leader), "the superseded cycle's process outlived 5 s"
    await wait_for_state(bot, old, "cancelled", timeout=10)
    assert (await cycle_of(bot, old)).status == "superseded"


async def test_a_node_killed_mid_job_has_its_job_rerun_by_another(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, tmp_path: Path
) -> None:
    bot.runtime.settings = bot.runtime.settings.model_copy(update={"runner_lease_seconds": 3.0})
    marker = tmp_path / "first.pid"
    # The first attempt writes its pid and hangs; the second finds the marker and runs pytest.
    command = f"if [ -e {marker} ]; then {PYTEST}; else echo $$ > {marker}; exec sleep 300; fi"
    sha = repo.commit({"tests/test_math.py": TESTS, ".aac.yml": aac_yml(command)})
    first = nodes.start("node-1")
    cycle_id = await start_cycle(bot, repo, sha)
    orphan = int(await wait_for_file(marker))
    first.send_signal(signal.SIGKILL)  # the machine is gone: no goodbye to the bot
    first.wait()
    os.killpg(orphan, signal.SIGKILL)  # ...and what it ran with it
    nodes.start("node-2")

    await wait_for_analysis(bot, cycle_id, 60)
    job = await job_of(bot, cycle_id)
    assert (job.state, job.runner_name, job.attempts) == ("done", "node-2", 2)
    cycle = await cycle_of(bot, cycle_id)
    assert (cycle.total, cycle.failed) == (2, 1)


async def test_a_jobs_secret_never_reaches_the_stored_log(
    bot: RunningBot, repo: GitRepo, nodes: Nodes
) -> None:
    value = "pa55-" + "q" * 24
    async with bot.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, OWNER)
        await runners.set_secret(session, bot.runtime.vault, org, "DEPLOY", value)
    env = "env:\n  DEPLOY_TOKEN: {secret: DEPLOY}\n"
    # Printed whole, split over two writes, and beside what the node must not pass on.
    command = (
        'echo "token=$DEPLOY_TOKEN"; printf "%s" "$DEPLOY_TOKEN" | cut -c1-10; '
        'printf "%s\\n" "$DEPLOY_TOKEN"; echo "node=${SECRET_OF_THE_NODE:-unset}"; '
        'echo "aac-var=${AAC_RUNNER_TOKEN:-unset}"'
    )
    sha = repo.commit({".aac.yml": aac_yml(command, env=env)})
    nodes.start("node-s")
    cycle_id = await start_cycle(bot, repo, sha)
    await wait_for_state(bot, cycle_id, "done")
    job = await job_of(bot, cycle_id)
    async with bot.runtime.sessions() as session:
        log = await runners.read_log(session, job.id)
    assert value not in log
    assert value[:10] in log  # a fragment alone is no secret (and shows the command ran)
    assert "[REDACTED]" in log
    assert "node=unset" in log
    assert "aac-var=unset" in log


@pytest.mark.parametrize("allowed", [False, True])
async def test_a_fork_is_not_executed_without_approval(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, tmp_path: Path, allowed: bool
) -> None:
    from bot.runner_jobs import approve_runner_job

    ran = tmp_path / "ran"
    await set_runner_policy(bot, allow_forks=allowed)
    sha = repo.commit({".aac.yml": aac_yml(f"touch {ran}", results="none/*.xml")})
    nodes.start("node-f")
    cycle_id = await start_cycle(bot, repo, sha, from_fork=True)
    await asyncio.sleep(3)  # the node polls all along
    job = await job_of(bot, cycle_id)
    assert not ran.exists()
    if not allowed:
        assert job.state == "refused"
        assert (await cycle_of(bot, cycle_id)).outcome == "cancelled"
        return
    assert job.state == "awaiting_approval"
    async with bot.runtime.sessions.begin() as session:
        approved = await approve_runner_job(session, cycle_id, "maintainer-mona")
        assert approved is not None
    await wait_for_state(bot, cycle_id, "done")
    assert ran.exists()
    job = await job_of(bot, cycle_id)
    assert job.approved_by == "maintainer-mona"


async def test_a_node_revoked_mid_job_kills_its_command_at_once_and_stops(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, tmp_path: Path
) -> None:
    pid_file = tmp_path / "revoked.pid"
    sha = repo.commit({".aac.yml": aac_yml(f"echo $$ > {pid_file}; exec sleep 300")})
    node = nodes.start("node-r")
    await start_cycle(bot, repo, sha)
    leader = int(await wait_for_file(pid_file))
    revoked = await asyncio.to_thread(
        aac, "runner", "revoke", "--org", OWNER, "node-r",
        db=bot.runtime.settings.database_url, env={"AAC_SECRET_KEYS": TEST_KEYS},
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stderr
    started = time.monotonic()
    while pid_alive(leader) and time.monotonic() - started < 5:
        await asyncio.sleep(0.05)
    assert not pid_alive(leader), "the revoked node's command outlived 5 s"
    await wait_for(lambda: node.poll() is not None, 10, "the revoked node to stop")
    out = nodes.output("node-r")
    assert "abandoned: the bot refused this node's token; killed" in out
    assert "refused this node's token" in out
    assert "revoked or no longer valid; stopping" in out


async def test_a_job_printing_past_the_log_cap_finishes_with_its_results(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 64 * 1024
    monkeypatch.setattr(runners, "MAX_LOG_BYTES", cap)  # the bot runs in this process
    lines = 5000
    printed = sum(len(f"{'x' * 60} {i}\n") for i in range(lines))
    flood = f"for i in range({lines}):\n    print('x' * 60, i)\n"
    yml = aac_yml(f"{sys.executable} flood.py; {PYTEST}")
    sha = repo.commit({"tests/test_math.py": TESTS, "flood.py": flood, ".aac.yml": yml})
    nodes.start("node-l")
    cycle_id = await start_cycle(bot, repo, sha)

    await wait_for_analysis(bot, cycle_id, 90)
    job = await job_of(bot, cycle_id)
    assert (job.state, job.exit_code) == ("done", 1)
    cycle = await cycle_of(bot, cycle_id)
    assert (cycle.total, cycle.passed, cycle.failed) == (2, 1, 1)  # results still uploaded
    async with bot.runtime.sessions() as session:
        log = await runners.read_log(session, job.id)
    assert job.log_bytes <= cap
    assert len(log.encode()) == job.log_bytes
    assert log.startswith("x" * 60 + " 0\n")

    # The node stopped sending at the refusal and counted the rest instead.
    finished = f"job {job.id} finished: exit code 1"
    await wait_for(lambda: finished in nodes.output("node-l"), 10, "the node's last line")
    out = nodes.output("node-l")
    found = re.search(rf"job {job.id}: \[… (\d+) bytes not sent: log full\]", out)
    assert found is not None, out
    assert int(found.group(1)) >= printed - job.log_bytes
    assert out.index(found.group(0)) < out.index(finished)
