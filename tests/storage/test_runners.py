"""Runner tokens, secrets, job claims under leases, cancellation and logs, on both engines."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from bot.runtime import Runtime
from storage import orgs, runners
from storage.models import Runner, RunnerJob, RunnerSecret, TestCycle
from storage.types import utcnow


async def _org_and_registration(runtime: Runtime) -> tuple[int, str]:
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        return org.id, await runners.create_registration(session, org)


async def _job(runtime: Runtime, org_id: int, labels: list[str], sha: str = "a" * 40) -> int:
    async with runtime.sessions.begin() as session:
        cycle = TestCycle(org_id=org_id, source="github", repository="acme/w", sha=sha, suite="u")
        session.add(cycle)
        await session.flush()
        job = RunnerJob(
            org_id=org_id,
            cycle_id=cycle.id,
            suite="u",
            repository="acme/w",
            sha=sha,
            labels=labels,
            spec={"command": "true"},
            max_attempts=2,
        )
        session.add(job)
        await session.flush()
        return job.id


async def test_registration_gives_a_revocable_hashed_runner_token(runtime: Runtime) -> None:
    _, registration = await _org_and_registration(runtime)
    async with runtime.sessions.begin() as session:
        assert await runners.register_runner(session, registration + "x", "n1", []) is None
        registered = await runners.register_runner(session, registration, "n1", ["linux"])
        assert registered is not None
        _runner, token = registered
    assert token.startswith(runners.RUNNER_PREFIX)
    async with runtime.sessions.begin() as session:
        row = (await session.execute(select(Runner))).scalar_one()
        assert token not in row.token_hash
        assert row.prefix == token[: len(row.prefix)]
        assert (await runners.authenticate_runner(session, token)) is not None
        assert await runners.authenticate_runner(session, token[:-1] + "?") is None
        org = await orgs.get_org(session, "acme")
        await runners.revoke_runner(session, org, "n1")
    async with runtime.sessions.begin() as session:
        assert await runners.authenticate_runner(session, token) is None
        # Registering the name again issues a new token and the node is back.
        again = await runners.register_runner(session, registration, "n1", ["linux"])
        assert again is not None
        assert again[1] != token
        assert await runners.authenticate_runner(session, again[1]) is not None
        assert await runners.revoke_registrations(session, org) == 1
        assert await runners.register_runner(session, registration, "n2", []) is None


async def test_secrets_are_encrypted_and_missing_ones_named(runtime: Runtime) -> None:
    org_id, _ = await _org_and_registration(runtime)
    async with runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        await runners.set_secret(session, runtime.vault, org, "PYPI", "s3cr3t-value")
    async with runtime.sessions.begin() as session:
        stored = (await session.execute(select(RunnerSecret.value_enc))).scalar_one()
        assert "s3cr3t" not in stored
        found = await runners.load_secrets(session, runtime.vault, org_id, ["PYPI"])
        assert found["PYPI"].reveal() == "s3cr3t-value"
        with pytest.raises(runners.RunnerError, match="NOPE is not set"):
            await runners.load_secrets(session, runtime.vault, org_id, ["PYPI", "NOPE"])


async def test_claims_match_labels_and_never_hand_a_job_out_twice(runtime: Runtime) -> None:
    org_id, registration = await _org_and_registration(runtime)
    async with runtime.sessions.begin() as session:
        plain = await runners.register_runner(session, registration, "plain", [])
        gpu = await runners.register_runner(session, registration, "gpu", ["gpu", "linux"])
        assert plain is not None
        assert gpu is not None
    gpu_job = await _job(runtime, org_id, ["gpu"])
    jobs = [await _job(runtime, org_id, [], sha=f"{n:040d}") for n in range(6)]

    async def claim(runner: Runner) -> int | None:
        async with runtime.sessions.begin() as session:
            job = await runners.claim_job(session, runner, lease_seconds=30)
            return job.id if job else None

    async with runtime.sessions.begin() as session:
        assert await runners.has_queued_job(session, org_id)
    claims = await asyncio.gather(*(claim(plain[0]) for _ in range(6)), claim(gpu[0]))
    assert sorted(c for c in claims if c is not None) == sorted([*jobs, gpu_job])
    assert await claim(plain[0]) is None
    async with runtime.sessions() as session:
        gpu_row = await session.get(RunnerJob, gpu_job)
        assert gpu_row is not None
        assert gpu_row.runner_name == "gpu"


async def test_a_vanished_runner_gets_its_job_requeued_then_failed(runtime: Runtime) -> None:
    org_id, registration = await _org_and_registration(runtime)
    async with runtime.sessions.begin() as session:
        registered = await runners.register_runner(session, registration, "n", [])
        assert registered is not None
    job_id = await _job(runtime, org_id, [])
    for attempt in (1, 2):
        async with runtime.sessions.begin() as session:
            job = await runners.claim_job(session, registered[0], lease_seconds=30)
            assert job is not None
            assert job.attempts == attempt
        async with runtime.sessions.begin() as session:
            expired = await runners.expire_leases(session, now=utcnow() + timedelta(seconds=31))
        assert [(e.job.id, e.failed) for e in expired] == [(job_id, attempt == 2)]
    async with runtime.sessions() as session:
        row = await session.get(RunnerJob, job_id)
        assert row is not None
        assert row.state == "failed"
        assert row.reason is not None
        assert "infrastructure error" in row.reason


async def test_cancelling_a_cycle_flags_running_and_drops_queued_jobs(runtime: Runtime) -> None:
    org_id, registration = await _org_and_registration(runtime)
    async with runtime.sessions.begin() as session:
        registered = await runners.register_runner(session, registration, "n", [])
        assert registered is not None
    running_id = await _job(runtime, org_id, [])
    queued_id = await _job(runtime, org_id, [], sha="b" * 40)
    async with runtime.sessions.begin() as session:
        claimed = await runners.claim_job(session, registered[0], lease_seconds=30)
        assert claimed is not None
        assert claimed.id == running_id
        cycle_ids = list((await session.execute(select(RunnerJob.cycle_id))).scalars())
        assert await runners.cancel_cycle_jobs(session, cycle_ids, "superseded") == 2
    async with runtime.sessions() as session:
        running = await session.get(RunnerJob, running_id)
        queued = await session.get(RunnerJob, queued_id)
        assert running is not None
        assert running.state == "running"
        assert running.cancel_requested
        assert queued is not None
        assert queued.state == "cancelled"


async def test_logs_keep_the_last_attempt_in_order_within_a_bound(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    org_id, _ = await _org_and_registration(runtime)
    job_id = await _job(runtime, org_id, [])
    monkeypatch.setattr(runners, "MAX_LOG_BYTES", 20)
    async with runtime.sessions.begin() as session:
        job = await session.get(RunnerJob, job_id)
        assert job is not None
        job.attempts = 1
        assert await runners.append_log(session, job, 1, "two\n")
        assert await runners.append_log(session, job, 0, "one\n")
        assert await runners.append_log(session, job, 0, "one\n")  # a retried request
        assert not await runners.append_log(session, job, 2, "x" * 20)  # over the bound
        job.attempts = 2
        assert await runners.append_log(session, job, 0, "again\n")
    async with runtime.sessions() as session:
        assert await runners.read_log(session, job_id) == "again\n"
        count = (await session.execute(text("SELECT count(*) FROM runner_log_chunks"))).scalar()
        assert count == 3
