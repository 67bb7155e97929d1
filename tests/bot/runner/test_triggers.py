"""What starts a testing node's job: a signed pull request webhook through the real app, the
repository's ``.aac.yml`` served by the fake GitHub, and ``/aac approve`` for a fork."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from storage import apikeys, orgs
from storage.models import Job, RunnerJob, TestCycle
from tests.bot.e2e.conftest import (
    REPOSITORY,
    RunningBot,
    install,
    official_example,
    pull_request,
    retarget,
    wait_for,
)
from tests.bot.runner.conftest import (
    PYTEST,
    TESTS,
    GitRepo,
    Nodes,
    aac_yml,
    job_of,
    set_runner_policy,
    wait_for_state,
)
from tests.github_constants import OWNER

PR = 7


async def cycle_for(bot: RunningBot, sha: str) -> TestCycle | None:
    async with bot.runtime.sessions() as session:
        found = await session.execute(select(TestCycle).where(TestCycle.sha == sha))
        return found.scalars().first()


async def opened(bot: RunningBot, repo: GitRepo, files: dict[str, str], **head: Any) -> str:
    """Commit ``files``, let the fake GitHub serve the commit's .aac.yml, deliver the PR."""
    sha = repo.commit(files)
    bot.github.add_contents(REPOSITORY, ".aac.yml", files[".aac.yml"].encode(), ref=sha)
    payload = pull_request("opened", PR, sha)
    payload["pull_request"]["head"]["repo"].update(head)
    assert (await bot.deliver("pull_request", payload)).status_code == 202
    return sha


def comment(body: str, user: str) -> dict[str, Any]:
    payload = retarget(official_example("pull_request.opened"), sender=user)
    payload.update(
        {
            "action": "created",
            "issue": {"number": PR, "pull_request": {"url": "x"}},
            "comment": {"body": body, "user": {"login": user}},
        }
    )
    return payload


async def job_state(bot: RunningBot, cycle_id: str) -> str | None:
    """The cycle's job's state; None before it is visible. On SQLite the cycle's row can be
    seen before its job's: create_cycle's first savepoint commits the cycle early there."""
    async with bot.runtime.sessions() as session:
        found = await session.execute(select(RunnerJob.state).where(RunnerJob.cycle_id == cycle_id))
        return found.scalar_one_or_none()


async def cycle_id_of(bot: RunningBot, sha: str) -> str:
    async def exists() -> bool:
        return await cycle_for(bot, sha) is not None

    await wait_for(exists, 30, "the pull request's cycle")
    cycle = await cycle_for(bot, sha)
    assert cycle is not None
    return cycle.id


async def completed_run(bot: RunningBot, sha: str) -> str | None:
    async def published() -> bool:
        return any(
            r.head_sha == sha and r.status == "completed" for r in bot.github.check_runs.values()
        )

    await wait_for(published, 90, "the check run to complete on the fake GitHub")
    [run] = [r for r in bot.github.check_runs.values() if r.head_sha == sha]
    return run.conclusion


async def test_a_pull_request_webhook_runs_its_run_suite_on_a_node(
    bot: RunningBot, repo: GitRepo, nodes: Nodes
) -> None:
    await install(bot)
    nodes.start("node-pr")
    sha = await opened(bot, repo, {"tests/test_math.py": TESTS, ".aac.yml": aac_yml(PYTEST)})
    assert await completed_run(bot, sha) == "failure"  # one of the two tests fails
    cycle_id = await cycle_id_of(bot, sha)
    job = await job_of(bot, cycle_id)
    assert (job.state, job.runner_name, job.exit_code, job.from_fork) == (
        "done",
        "node-pr",
        1,
        False,
    )
    cycle = await cycle_for(bot, sha)
    assert cycle is not None
    assert (cycle.total, cycle.passed, cycle.failed) == (2, 1, 1)


async def test_a_fork_waits_for_approve_from_a_writer(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, tmp_path: Path
) -> None:
    await install(bot)
    await set_runner_policy(bot, allow_forks=True)
    ran = tmp_path / "ran"
    nodes.start("node-fork")
    yml = aac_yml(f"touch {ran}", results="none/*.xml")
    sha = await opened(bot, repo, {".aac.yml": yml}, full_name="forker/widgets")
    cycle_id = await cycle_id_of(bot, sha)

    async def waiting() -> bool:
        return await job_state(bot, cycle_id) == "awaiting_approval"

    await wait_for(waiting, 30, "the fork's job to wait for approval")
    assert (await job_of(bot, cycle_id)).from_fork

    # Someone who may not write to the repository cannot approve.
    bot.github.set_permission(REPOSITORY, "drive-by", "read")
    assert (await bot.deliver("issue_comment", comment("/aac approve", "drive-by"))).is_success
    await wait_for(lambda: _all_jobs_done(bot), 30, "the refused command's job")
    await asyncio.sleep(2.5)  # the node polls all along
    assert (await job_of(bot, cycle_id)).state == "awaiting_approval"
    assert not ran.exists()

    bot.github.set_permission(REPOSITORY, "maintainer", "write")
    assert (await bot.deliver("issue_comment", comment("/aac approve", "maintainer"))).is_success
    await completed_run(bot, sha)
    job = await job_of(bot, cycle_id)
    assert (job.state, job.approved_by) == ("done", "maintainer")
    assert ran.exists()


async def test_a_closed_pull_request_cancels_its_queued_job(
    bot: RunningBot, repo: GitRepo, nodes: Nodes
) -> None:
    """No node runs: the job stays queued until the pull request closes, then is dropped."""
    await install(bot)
    sha = await opened(bot, repo, {".aac.yml": aac_yml("true", results="none/*.xml")})
    cycle_id = await cycle_id_of(bot, sha)

    async def queued() -> bool:
        return await job_state(bot, cycle_id) == "queued"

    await wait_for(queued, 30, "the job to be queued")
    closed = pull_request("closed", PR, sha)
    assert (await bot.deliver("pull_request", closed)).status_code == 202

    async def cancelled() -> bool:
        return (await job_of(bot, cycle_id)).state == "cancelled"

    await wait_for(cancelled, 30, "the closed pull request's job to be cancelled")
    assert (await job_of(bot, cycle_id)).reason == "the change was closed"


async def _all_jobs_done(bot: RunningBot) -> bool:

    async with bot.runtime.sessions() as session:
        states = (await session.execute(select(Job.status))).scalars().all()
    return all(state in ("done", "dead") for state in states)


def finished_pipeline(sha: str, conclusion: str, run_id: int) -> dict[str, Any]:
    payload = retarget(official_example("workflow_run.completed"))
    payload["workflow_run"].update(
        {
            "id": run_id,
            "name": "CI",
            "head_sha": sha,
            "head_branch": "main",
            "conclusion": conclusion,
            "run_attempt": 1,
            "pull_requests": [],  # a push to the branch
        }
    )
    return payload


async def test_a_finished_pipeline_runs_the_suites_it_triggers(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, tmp_path: Path
) -> None:
    await install(bot)
    ran = tmp_path / "ran"
    yml = aac_yml(f"touch {ran}", results="none/*.xml").replace(
        "[pull_request]", "[pipeline_finished]"
    )
    cancelled_sha = repo.commit({".aac.yml": yml})
    sha = repo.commit({".aac.yml": yml, "README": "after the build"})
    for commit in (cancelled_sha, sha):
        bot.github.add_contents(REPOSITORY, ".aac.yml", yml.encode(), ref=commit)
    stopped = finished_pipeline(cancelled_sha, "cancelled", 501)
    assert (await bot.deliver("workflow_run", stopped)).status_code == 202
    assert (await bot.deliver("workflow_run", finished_pipeline(sha, "success", 502))).is_success
    nodes.start("node-ci")
    cycle_id = await cycle_id_of(bot, sha)
    await completed_run(bot, sha)
    job = await job_of(bot, cycle_id)
    assert job.state == "done"
    assert ran.exists()
    cycle = await cycle_for(bot, sha)
    assert cycle is not None
    assert cycle.trigger == "pipeline_finished"
    assert await cycle_for(bot, cancelled_sha) is None  # a cancelled pipeline runs nothing


def manual_yml(command: str) -> str:
    """A pull request's `unit` suite beside a `nightly` suite only started by hand."""
    return aac_yml("true", results="none/*.xml") + (
        "  - name: nightly\n"
        "    triggers: [manual]\n"
        "    run:\n"
        f"      command: {command!r}\n"
        "      results: 'none/*.xml'\n"
    )


async def test_aac_run_starts_a_manual_suite_and_aac_rerun_runs_it_again(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, tmp_path: Path
) -> None:
    await install(bot)
    ran = tmp_path / "nightly-runs"
    nodes.start("node-manual")
    sha = await opened(bot, repo, {".aac.yml": manual_yml(f"echo ran >> {ran}")})
    await cycle_id_of(bot, sha)
    await completed_run(bot, sha)  # unit, started by the pull request
    bot.github.set_permission(REPOSITORY, "maintainer", "write")

    # A suite the file does not have: the maintainer is told which ones can be started.
    assert (
        await bot.deliver("issue_comment", comment("/aac run nightlly", "maintainer"))
    ).is_success

    async def answered() -> bool:
        return any("`nightly`" in c.body for c in bot.github.issue_comments(REPOSITORY, PR))

    await wait_for(answered, 30, "the reply naming the manual suites")

    assert (
        await bot.deliver("issue_comment", comment("/aac run nightly", "maintainer"))
    ).is_success

    async def nightly_runs(count: int) -> bool:
        async with bot.runtime.sessions() as session:
            states = (
                await session.execute(select(RunnerJob.state).where(RunnerJob.suite == "nightly"))
            ).scalars()
            return [*states] == ["done"] * count

    await wait_for(lambda: nightly_runs(1), 60, "the manual suite's node run")
    assert ran.read_text() == "ran\n"

    # A re-run acts on finished cycles only (one still analysing is left alone): wait until
    # every cycle of the change is published, as a person reading the report would.
    async def all_finished() -> bool:
        async with bot.runtime.sessions() as session:
            states = set((await session.execute(select(TestCycle.status))).scalars())
        return states <= {"done", "infra_error"}

    await wait_for(all_finished, 60, "the first nightly run to be published")
    assert (await bot.deliver("issue_comment", comment("/aac rerun", "maintainer"))).is_success
    await wait_for(lambda: nightly_runs(2), 60, "the re-run on a node")
    assert ran.read_text() == "ran\nran\n"
    async with bot.runtime.sessions() as session:
        rows = await session.execute(
            select(TestCycle.trigger, TestCycle.run_attempt, TestCycle.status)
            .where(TestCycle.suite == "nightly")
            .order_by(TestCycle.run_attempt)
        )
        nightly = [tuple(row) for row in rows.all()]
    assert [(trigger, attempt) for trigger, attempt, _ in nightly] == [("manual", 1), ("manual", 2)]

    # Each attempt has a check run of its own on the commit, as GitHub's own re-runs do.
    async def both_published() -> bool:
        runs = [r for r in bot.github.check_runs.values() if r.name.endswith("nightly")]
        return len(runs) == 2 and all(r.status == "completed" for r in runs)

    await wait_for(both_published, 60, "both nightly check runs to complete")


async def test_the_api_and_cli_start_a_manual_suite_without_a_comment(
    bot: RunningBot, repo: GitRepo, nodes: Nodes, tmp_path: Path
) -> None:
    await install(bot)
    ran = tmp_path / "nightly-runs"
    # Only a commit an SCM event named may start: its pull request says where its code is from.
    sha = await opened(bot, repo, {".aac.yml": manual_yml(f"echo ran >> {ran}")})
    await cycle_id_of(bot, sha)
    async with bot.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, OWNER)
        _, key = await apikeys.create_api_key(session, org, "manual", scopes=("run",))
    url, auth = f"{bot.url}/api/v1/cycles/manual", {"Authorization": f"Bearer {key}"}

    def body(suite: str) -> dict[str, str]:
        return {"source": "github", "repository": REPOSITORY, "sha": sha, "suite": suite}

    unknown = await bot.http.post(url, json=body("nightlly"), headers=auth)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"] == "suite_not_found"
    not_manual = await bot.http.post(url, json=body("unit"), headers=auth)
    assert not_manual.status_code == 422, not_manual.text
    assert not_manual.json()["error"] == "suite_not_manual"
    assert (await bot.http.post(url, json=body("nightly"))).status_code == 401

    started = await bot.http.post(url, json=body("nightly"), headers=auth)
    assert started.status_code == 201, started.text
    assert (started.json()["trigger"], started.json()["pr"]) == ("manual", PR)
    again = await bot.http.post(url, json=body("nightly"), headers=auth)
    assert (again.status_code, again.json()["id"]) == (200, started.json()["id"])  # running
    nodes.start("node-api")
    await wait_for_state(bot, started.json()["id"], "done")

    # The operator's command: the organisation is the one whose cycles name the repository.
    argv = ["cycles", "run", "--repo", REPOSITORY, "--sha", sha, "--suite", "nightly"]
    code, out, err = await bot.aac(*argv)
    assert code == 0, err.decode()
    assert b"started cycle" in out
    async with bot.runtime.sessions() as session:
        attempts = (
            await session.execute(select(TestCycle.run_attempt).where(TestCycle.suite == "nightly"))
        ).scalars()
        assert sorted(attempts) == [1, 2]
    code, _, err = await bot.aac(*argv[:-1], "unit")
    assert code != 0
    assert b"suite `unit` cannot be started by hand" in err
