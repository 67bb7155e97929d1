"""Testing nodes against a running bot: a real git repository, real `aac runner` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import runner_jobs
from config.repo_config import parse_repo_config
from storage import orgs, runners
from storage.models import RunnerJob, TestCycle
from tests.bot.e2e.conftest import REPOSITORY, RunningBot, bot, wait_for
from tests.fakes.github import CheckRun
from tests.github_constants import OWNER

__all__ = ["bot"]  # the running bot fixture, shared with the end-to-end tests

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}

TESTS = """\
def test_adds():
    assert 1 + 1 == 2


def test_subtracts():
    assert 3 - 1 == 1, "arithmetic is broken"
"""


def aac_yml(command: str, *, timeout: int = 120, env: str = "", results: str = "out/*.xml") -> str:
    """A .aac.yml with one `run` suite named unit."""
    return textwrap.dedent(
        f"""\
        suites:
          - name: unit
            triggers: [pull_request]
            run:
              command: {command!r}
              timeout: {timeout}
              results: {results!r}
        """
    ) + (textwrap.indent(env, "      ") if env else "")


PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider --junitxml=out/junit.xml tests"


@dataclass
class GitRepo:
    """A repository on disk, served to runners over file:// (the organisation's mirror)."""

    root: Path  # the mirror root; the repository lives at root/<owner>/<name>
    path: Path

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**GIT_ENV, "PATH": os.environ["PATH"]},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    root = tmp_path / "mirror"
    path = root / REPOSITORY
    path.mkdir(parents=True)
    made = GitRepo(root, path)
    made.git("init", "-q", "-b", "main")
    return made


@dataclass
class Nodes:
    """`aac runner` processes started by a test, stopped (or killed) at its end."""

    bot: RunningBot
    work: Path
    registration: str = ""
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, name: str, *, labels: str = "", concurrency: int = 1) -> subprocess.Popen[str]:
        log = (self.work / f"{name}.out").open("w")
        env = {
            "PATH": os.environ["PATH"],
            "AAC_RUNNER_TOKEN": self.registration,
            "SECRET_OF_THE_NODE": "node-only-value",
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "runner",
                "--server",
                self.bot.url,
                "--token-env",
                "AAC_RUNNER_TOKEN",
                "--name",
                name,
                "--labels",
                labels,
                "--concurrency",
                str(concurrency),
                "--work-dir",
                str(self.work / name),
                "--poll-wait",
                "2",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append(process)
        return process

    def output(self, name: str) -> str:
        return (self.work / f"{name}.out").read_text()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def nodes(bot: RunningBot, repo: GitRepo, tmp_path: Path) -> Any:
    async with bot.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, OWNER)
        org.settings = {
            **(org.settings or {}),
            "runners": {"clone_url": f"file://{repo.root}/{{repository}}"},
        }
        registration = await runners.create_registration(session, org)
    work = tmp_path / "nodes"
    work.mkdir()
    started = Nodes(bot, work, registration)
    yield started
    started.stop_all()


async def set_runner_policy(bot: RunningBot, **policy: Any) -> None:
    """Change the test organisation's runner settings (``allow_forks``, ``max_attempts``)."""
    async with bot.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, OWNER)
        org.settings = {**org.settings, "runners": {**org.settings["runners"], **policy}}


async def start_cycle(
    bot: RunningBot, repo: GitRepo, sha: str, *, pr: int = 7, from_fork: bool = False
) -> str:
    """A cycle created through the API, its `run` suite queued as the PR handler will."""
    response = await bot.http.post(
        f"{bot.url}/api/v1/cycles",
        json={
            "source": "github",
            "repository": REPOSITORY,
            "sha": sha,
            "pr": pr,
            "suite": "unit",
            "trigger": "pull_request",
        },
        headers={"Authorization": f"Bearer {bot.api_key}"},
    )
    assert response.status_code == 201, response.text
    cycle_id = str(response.json()["id"])
    config = parse_repo_config((repo.path / ".aac.yml").read_text())
    [suite] = config.suites_for("pull_request")
    async with bot.runtime.sessions.begin() as session:
        cycle = await session.get(TestCycle, cycle_id)
        assert cycle is not None
        await runner_jobs.queue_runner_jobs(session, cycle, suite, from_fork=from_fork)
    return cycle_id


async def job_of(bot: RunningBot, cycle_id: str) -> RunnerJob:
    async with bot.runtime.sessions() as session:
        job = (
            await session.execute(select(RunnerJob).where(RunnerJob.cycle_id == cycle_id))
        ).scalar_one()
        return job


async def cycle_of(bot: RunningBot, cycle_id: str) -> TestCycle:
    async with bot.runtime.sessions() as session:
        cycle = await session.get(TestCycle, cycle_id)
        assert cycle is not None
        return cycle


async def wait_for_analysis(bot: RunningBot, cycle_id: str, timeout: float = 90) -> None:
    """Wait until the cycle's results are in and analysed."""

    async def analysed() -> bool:
        return (await cycle_of(bot, cycle_id)).status == "done"

    await wait_for(analysed, timeout, f"cycle {cycle_id} to be analysed")


async def wait_for_state(bot: RunningBot, cycle_id: str, *states: str, timeout: float = 60) -> None:
    async def reached() -> bool:
        return (await job_of(bot, cycle_id)).state in states

    await wait_for(reached, timeout, f"the job of {cycle_id} to be {' or '.join(states)}")


async def completed_check_run(bot: RunningBot, sha: str) -> CheckRun:
    """The commit's check run on the fake GitHub, once it is completed."""

    def completed() -> list[CheckRun]:
        runs = bot.github.check_runs.values()
        return [r for r in runs if r.head_sha == sha and r.status == "completed"]

    await wait_for(lambda: bool(completed()), 30, "the check run on the fake GitHub")
    [run] = completed()
    return run


def pid_alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for a reaper that never comes does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


async def wait_for_file(path: Path, timeout: float = 30) -> str:
    """The content of a file a job's command writes, once it is there (the bot runs on this
    event loop, so this waits without blocking it)."""
    await wait_for(lambda: path.exists() and bool(path.read_text().strip()), timeout, str(path))
    return path.read_text().strip()
