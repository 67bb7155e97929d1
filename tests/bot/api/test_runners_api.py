"""The runner API's refusals and guarantees, in process (the e2e tests run real nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot import runner_jobs
from bot.analyse import AnalyseCycle
from bot.runner_credentials import CredentialUnavailable, mint_job_credential
from config.repo_config import parse_repo_config
from storage import orgs, queue, runners
from storage.models import GithubApp, Installation, RunnerJob, TestCycle
from storage.secret_fields import github_app_owner
from tests.bot.api.conftest import ApiHarness
from tests.bot.api.test_cycles_api import JUNIT
from tests.fakes.github import FakeGithub
from tests.github_constants import APP_ID, INSTALLATION_ID, OWNER

SUITE = """
suites:
  - name: unit
    run:
      command: make test
      env:
        TOKEN: {secret: DEPLOY}
"""


async def _runner_token(api: ApiHarness, org: str = "acme") -> str:
    async with api.runtime.sessions.begin() as session:
        registration = await runners.create_registration(session, await orgs.get_org(session, org))
    answer = await api.client.post(
        "/api/v1/runners/register",
        json={"name": f"n-{org}", "labels": ["linux"]},
        headers={"Authorization": f"Bearer {registration}"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


async def _queued_job(api: ApiHarness, *, secret: str | None = "s3cr3t-deploy-value") -> str:
    async with api.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        org.settings = {"runners": {"clone_url": "file:///mirror/{repository}"}}
        if secret is not None:
            await runners.set_secret(session, api.runtime.vault, org, "DEPLOY", secret)
        cycle = TestCycle(org_id=org.id, source="ci", repository="acme/w", sha="a" * 40)
        cycle.suite = "unit"
        session.add(cycle)
        await session.flush()
        [suite] = parse_repo_config(SUITE).suites
        await runner_jobs.queue_runner_jobs(session, cycle, suite)
        return cycle.id


async def test_registration_and_runner_tokens_are_checked(api: ApiHarness) -> None:
    bad = await api.client.post(
        "/api/v1/runners/register",
        json={"name": "n"},
        headers={"Authorization": "Bearer aacreg_000000000000_nope"},
    )
    assert bad.status_code == 401
    assert bad.json()["error"] == "unauthorized"
    for headers in ({}, {"Authorization": f"Bearer {api.key}"}):  # an API key is no runner token
        polled = await api.client.post("/api/v1/runners/jobs/next?wait=0", headers=headers)
        assert polled.status_code == 401
    token = await _runner_token(api)
    nothing = await api.client.post(
        "/api/v1/runners/jobs/next?wait=0", headers={"Authorization": f"Bearer {token}"}
    )
    assert nothing.status_code == 204
    invalid = await api.client.post(
        "/api/v1/runners/jobs/next?wait=soon", headers={"Authorization": f"Bearer {token}"}
    )
    assert invalid.status_code == 422


async def test_a_job_is_only_the_holding_runners_and_its_log_is_masked(api: ApiHarness) -> None:
    token = await _runner_token(api)
    other = await _runner_token(api, "globex")
    cycle_id = await _queued_job(api)
    auth = {"Authorization": f"Bearer {token}"}
    # Another organisation's node never sees it.
    assert (
        await api.client.post(
            "/api/v1/runners/jobs/next?wait=0", headers={"Authorization": f"Bearer {other}"}
        )
    ).status_code == 204
    job = (await api.client.post("/api/v1/runners/jobs/next?wait=0", headers=auth)).json()
    assert job["cycle_id"] == cycle_id
    assert job["secret_env"] == ["TOKEN"]
    assert "s3cr3t" not in str(job)  # values only through /credential
    path = f"/api/v1/runners/jobs/{job['id']}"
    stolen = await api.client.post(
        f"{path}/credential", headers={"Authorization": f"Bearer {other}"}
    )
    assert stolen.status_code == 409
    credential = await api.client.post(f"{path}/credential", headers=auth)
    assert credential.json() == {"secret_env": {"TOKEN": "s3cr3t-deploy-value"}, "git": None}
    assert credential.headers["cache-control"] == "no-store"
    # A node that did not mask: the bot masks before storing.
    logged = await api.client.post(
        f"{path}/log", json={"seq": 0, "text": "deploying with s3cr3t-deploy-value\n"}, headers=auth
    )
    assert logged.json() == {"accepted": True, "cancel": False}
    too_big = await api.client.post(
        f"{path}/log", json={"seq": 1, "text": "x" * (64 * 1024 + 1)}, headers=auth
    )
    assert too_big.status_code == 422
    finished = await api.client.post(f"{path}/finish", json={"exit_code": 0}, headers=auth)
    assert finished.json() == {"state": "done"}
    again = await api.client.post(f"{path}/finish", json={"exit_code": 0}, headers=auth)
    assert again.status_code == 409
    async with api.runtime.sessions() as session:
        stored = await runners.read_log(session, job["id"])
        cycle = await session.get(TestCycle, cycle_id)
    assert "s3cr3t" not in stored
    assert "[REDACTED]" in stored
    assert cycle is not None
    assert cycle.status == "analysing"
    assert (
        await api.client.post("/api/v1/runners/jobs/x1/heartbeat", headers=auth)
    ).status_code == 404


async def test_a_timed_out_job_completes_its_cycle_as_a_timeout_keeping_its_results(
    api: ApiHarness,
) -> None:
    token = await _runner_token(api)
    cycle_id = await _queued_job(api)
    auth = {"Authorization": f"Bearer {token}"}
    job = (await api.client.post("/api/v1/runners/jobs/next?wait=0", headers=auth)).json()
    path = f"/api/v1/runners/jobs/{job['id']}"
    # What the suite wrote before the node killed it is uploaded, as the node does.
    uploaded = await api.client.post(
        f"{path}/results",
        files=[("files", ("out/junit.xml", JUNIT, "application/xml"))],
        headers=auth,
    )
    assert uploaded.status_code == 200, uploaded.text
    finished = await api.client.post(
        f"{path}/finish", json={"exit_code": None, "timed_out": True}, headers=auth
    )
    assert finished.json() == {"state": "timed_out"}
    async with api.runtime.sessions.begin() as session:
        [analyse] = await queue.claim(session, "w", lease_seconds=30)
    await AnalyseCycle(api.runtime).run(analyse)

    read = (await api.client.get(f"/api/v1/cycles/{cycle_id}", headers=api.auth())).json()
    assert (read["status"], read["outcome"], read["timeout_seconds"]) == ("done", "timed_out", 1800)
    assert read["infrastructure_error"] is False
    assert read["totals"]["total"] == 3
    assert read["summary"].startswith("Timed out after 1,800 s · 1 failed, 1 passed, 1 skipped")
    page = await api.client.get(f"/cycles/{cycle_id}", headers=api.auth())
    assert page.status_code == 200
    assert "The testing node killed the command at the suite&#x27;s timeout (1,800 s)." in page.text
    assert "The 3 test results uploaded before the kill were kept" in page.text
    assert "test_div" in page.text
    assert "infrastructure error" not in page.text.lower()


async def test_a_missing_secret_fails_the_credential_with_its_name(api: ApiHarness) -> None:
    token = await _runner_token(api)
    await _queued_job(api, secret=None)
    auth = {"Authorization": f"Bearer {token}"}
    job = (await api.client.post("/api/v1/runners/jobs/next?wait=0", headers=auth)).json()
    answer = await api.client.post(f"/api/v1/runners/jobs/{job['id']}/credential", headers=auth)
    assert answer.status_code == 424
    assert "DEPLOY is not set" in answer.json()["detail"]


async def test_the_github_credential_is_scoped_to_one_repository_read_only(
    api: ApiHarness, github_server: FakeGithub, github_app_key: tuple[str, str]
) -> None:
    github_server.reset()
    async with api.runtime.sessions.begin() as session:
        org = await orgs.create_org(session, OWNER)
        app = GithubApp(
            app_id=APP_ID, api_url=github_server.url, private_key_enc="", webhook_secret_enc=""
        )
        session.add(app)
        await session.flush()
        app.private_key_enc = api.runtime.vault.encrypt(
            github_app_key[0], github_app_owner(app.id, "private_key")
        )
        app.webhook_secret_enc = api.runtime.vault.encrypt(
            "w", github_app_owner(app.id, "webhook_secret")
        )
        session.add(
            Installation(
                github_app_id=app.id,
                installation_id=INSTALLATION_ID,
                account_login=OWNER,
                org_id=org.id,
                repositories=[f"{OWNER}/widgets"],
            )
        )
        cycle = TestCycle(
            org_id=org.id, source="github", repository=f"{OWNER}/widgets", sha="b" * 40
        )
        cycle.context_extra = {"installation_id": INSTALLATION_ID, "api_url": github_server.url}
        session.add(cycle)
        await session.flush()
        credential = await mint_job_credential(session, api.runtime.vault, org, cycle)
    assert credential is not None
    assert credential.username == "x-access-token"
    assert credential.password not in repr(credential)
    assert github_server.token_scopes[credential.password] == {
        "repositories": ["widgets"],
        "permissions": {"contents": "read"},
    }
    assert github_server.validation_errors == []


async def _github_cycle(api: ApiHarness, mirror: str | None) -> tuple[RunnerJob, TestCycle]:
    """A GitHub cycle of a repository no installation covers, its `run` suite queued; the
    organisation has its own GitHub token, which must not be handed to a node."""
    async with api.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        await orgs.set_integration(
            session, api.runtime.vault, org, "github", token="ghp_" + "o" * 36
        )
        org.settings = {"runners": {"clone_url": mirror}} if mirror else {}
        cycle = TestCycle(org_id=org.id, source="github", repository="acme/w", sha="f" * 40)
        cycle.suite = "unit"
        session.add(cycle)
        await session.flush()
        [suite] = parse_repo_config(SUITE).suites
        job = await runner_jobs.queue_runner_jobs(session, cycle, suite)
        assert job is not None
        return job, cycle


async def test_a_github_repository_without_an_installation_fails_at_once(
    api: ApiHarness,
) -> None:
    job, cycle = await _github_cycle(api, None)
    assert job.state == "failed"
    assert job.reason is not None
    assert "no GitHub App installation linked to organisation acme covers acme/w" in job.reason
    assert "`aac github-app link --installation ID --org acme`" in job.reason
    assert "ghp_" not in job.reason
    assert (cycle.outcome, cycle.total) == ("failure", 0)  # an infrastructure error
    # Uninstalled between queueing and the node's request: refused, no fallback token.
    async with api.runtime.sessions() as session:
        org = await orgs.get_org(session, "acme")
        with pytest.raises(CredentialUnavailable, match="install the App on the repository"):
            await mint_job_credential(session, api.runtime.vault, org, cycle)


async def test_a_github_repository_with_a_mirror_needs_no_installation(api: ApiHarness) -> None:
    job, cycle = await _github_cycle(api, "https://mirror.example/{repository}.git")
    assert (job.state, job.spec["clone_url"]) == ("queued", "https://mirror.example/acme/w.git")
    async with api.runtime.sessions() as session:
        org = await orgs.get_org(session, "acme")
        assert await mint_job_credential(session, api.runtime.vault, org, cycle) is None


@pytest.mark.parametrize("fork", [True, False])
async def test_approval_is_only_for_a_forks_waiting_job(api: ApiHarness, fork: bool) -> None:
    async with api.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        org.settings = {"runners": {"allow_forks": True, "clone_url": "file:///m/{repository}"}}
        cycle = TestCycle(org_id=org.id, source="ci", repository="acme/w", sha="c" * 40)
        cycle.context_extra = {"head_repository": "mallory/w" if fork else "acme/w"}
        session.add(cycle)
        await session.flush()
        [suite] = parse_repo_config(SUITE).suites
        job = await runner_jobs.queue_runner_jobs(session, cycle, suite)
        assert job is not None
        assert job.state == ("awaiting_approval" if fork else "queued")
        approved = await runner_jobs.approve_runner_job(session, cycle.id, "mona")
        assert (approved is not None) is fork
    async with api.runtime.sessions() as session:
        row = (await session.execute(select(RunnerJob))).scalar_one()
        assert row.state == "queued"
        assert row.approved_by == ("mona" if fork else None)


async def test_a_pull_request_of_unknown_origin_counts_as_a_fork(api: ApiHarness) -> None:
    async with api.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        org.settings = {"runners": {"clone_url": "file:///m/{repository}"}}
        cycle = TestCycle(org_id=org.id, source="ci", repository="acme/w", sha="d" * 40, pr=3)
        session.add(cycle)
        await session.flush()
        [suite] = parse_repo_config(SUITE).suites
        job = await runner_jobs.queue_runner_jobs(session, cycle, suite)
        assert job is not None
        assert job.state == "refused"
        assert job.from_fork


async def test_a_revoked_node_stops_with_a_clear_line(api: ApiHarness, tmp_path: Path) -> None:
    import asyncio
    import io

    from bot.runner.client import RunnerClient
    from bot.runner.node import Node, NodeConfig

    token = await _runner_token(api)
    async with api.runtime.sessions.begin() as session:
        await runners.revoke_runner(session, await orgs.get_org(session, "acme"), "n-acme")
    out = io.StringIO()
    node = Node(
        RunnerClient("http://testserver", token, http=api.client),
        NodeConfig(name="n-acme", work_dir=tmp_path, poll_wait=0),
        environ={},
        out=out,
    )
    await asyncio.wait_for(node.run(asyncio.Event()), 10)
    assert node.refused
    assert "refused this node's token" in out.getvalue()
    assert token not in out.getvalue()


async def test_a_sub_second_timeout_is_reported_as_one_second(api: ApiHarness) -> None:
    token = await _runner_token(api)
    cycle_id = await _queued_job(api)
    async with api.runtime.sessions.begin() as session:
        queued = (await session.execute(select(RunnerJob))).scalar_one()
        queued.spec = {**queued.spec, "timeout": 0.4}
    auth = {"Authorization": f"Bearer {token}"}
    job = (await api.client.post("/api/v1/runners/jobs/next?wait=0", headers=auth)).json()
    finished = await api.client.post(
        f"/api/v1/runners/jobs/{job['id']}/finish",
        json={"exit_code": None, "timed_out": True},
        headers=auth,
    )
    assert finished.json() == {"state": "timed_out"}
    read = (await api.client.get(f"/api/v1/cycles/{cycle_id}", headers=api.auth())).json()
    # Rounded down it would be 0 s, a limit the cycle API itself refuses (ge=1).
    assert (read["outcome"], read["timeout_seconds"]) == ("timed_out", 1)
