"""A vanished node's job with no node polling: the worker's periodic expiry re-queues it, then
fails it as an infrastructure error after its last attempt and the cycle is published."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bot.jobs import periodic_jobs
from bot.runner_expiry import RUNNER_EXPIRY_JOB
from config.settings import Settings, load_settings
from tests.bot.e2e.conftest import RunningBot, install, wait_for
from tests.bot.runner.conftest import (
    GitRepo,
    Nodes,
    aac_yml,
    completed_check_run,
    cycle_of,
    job_of,
    set_runner_policy,
    start_cycle,
    wait_for_file,
    wait_for_state,
)
from tests.conftest import TEST_KEYS


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Short leases, looked at often: the test waits seconds, not the defaults' minutes."""
    return load_settings(
        {
            "AAC_DATABASE_URL": database_url,
            "AAC_SECRET_KEYS": TEST_KEYS,
            "AAC_RUNNER_LEASE_SECONDS": "3",
            "AAC_RUNNER_EXPIRE_INTERVAL": "0.3",
        },
        public_url="http://testserver",
    )


def test_every_worker_schedules_the_expiry() -> None:
    every = load_settings({"AAC_RUNNER_EXPIRE_INTERVAL": "15"})
    [expiry] = [job for job in periodic_jobs(every) if job.kind == RUNNER_EXPIRY_JOB]
    assert expiry.every == 15.0


async def test_a_vanished_nodes_job_expires_with_no_node_polling(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, tmp_path: Path
) -> None:
    await install(bot)
    await set_runner_policy(bot, max_attempts=2)
    first, second = tmp_path / "first.pid", tmp_path / "second.pid"
    command = (
        f"if [ -e {first} ]; then echo $$ > {second}; else echo $$ > {first}; fi; exec sleep 300"
    )
    sha = repo.commit({".aac.yml": aac_yml(command)})
    cycle_id = await start_cycle(bot, repo, sha)

    async def vanish(name: str, pid_file: Path) -> None:
        """A node takes the job, then its machine is gone: no goodbye, no other node polls."""
        node = nodes.start(name)
        pid = int(await wait_for_file(pid_file))
        node.send_signal(signal.SIGKILL)
        node.wait()
        os.killpg(pid, signal.SIGKILL)

    await vanish("node-1", first)
    await wait_for_state(bot, cycle_id, "queued", timeout=20)
    job = await job_of(bot, cycle_id)
    assert job.reason == "re-queued: node-1 stopped reporting during attempt 1"
    assert (await cycle_of(bot, cycle_id)).status == "collecting"

    await vanish("node-2", second)
    await wait_for_state(bot, cycle_id, "failed", timeout=20)
    job = await job_of(bot, cycle_id)
    assert job.reason == (
        "infrastructure error: node-2 stopped reporting (attempt 2 of 2); no attempts left"
    )

    async def published() -> bool:
        return (await cycle_of(bot, cycle_id)).status == "infra_error"

    await wait_for(published, 30, "the cycle to end as an infrastructure error")
    run = await completed_check_run(bot, sha)
    assert run.conclusion == "failure"
