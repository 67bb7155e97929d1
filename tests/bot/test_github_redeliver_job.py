"""The ``github_redeliver`` job as a worker runs it, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.github_redeliver import GITHUB_REDELIVER_JOB
from bot.jobs import job_handlers, periodic_jobs
from bot.runtime import Runtime
from bot.worker import Worker, WorkerConfig
from providers.base import Transient
from providers.factory import ProviderShared
from providers.github.app import configure_app
from storage.models import GithubApp, Job
from storage.queue import ClaimedJob
from storage.secret_fields import github_app_owner
from tests.fakes.github import FakeGithub, Fault
from tests.github_constants import APP_ID, APP_SLUG


@pytest.fixture
async def shared() -> AsyncIterator[ProviderShared]:
    state = ProviderShared()
    yield state
    await state.close()


@pytest.fixture
async def fake(
    runtime: Runtime, github_server: FakeGithub, github_app_key: tuple[str, str]
) -> FakeGithub:
    github_server.reset()
    async with runtime.sessions.begin() as session:
        await configure_app(
            session,
            runtime.vault,
            app_id=APP_ID,
            private_key_pem=github_app_key[0],
            webhook_secret="hook-secret",
            api_url=github_server.url,
            slug=APP_SLUG,
            client_id="Iv1.client",
            client_secret="client-secret-value",
        )
    return github_server


def job(payload: dict[str, object] | None = None) -> ClaimedJob:
    return ClaimedJob(1, GITHUB_REDELIVER_JOB, dict(payload or {}), 1, 5)


async def test_the_job_redelivers_what_failed_within_the_window(
    runtime: Runtime, fake: FakeGithub, shared: ProviderShared
) -> None:
    now = datetime.now(UTC)
    failed = fake.add_delivery("g-1", status_code=502, delivered_at=now - timedelta(hours=1))
    fake.add_delivery("g-2", status_code=200, delivered_at=now - timedelta(minutes=5))
    run = job_handlers(runtime, shared)[GITHUB_REDELIVER_JOB]

    await run(job({"window_seconds": 600}))  # the failure is older than ten minutes
    assert not [r for r in fake.requests if r.method == "POST"]

    await run(job())  # the configured window (8 hours by default)
    assert [r.path for r in fake.requests if r.method == "POST"] == [
        f"/app/hook/deliveries/{failed}/attempts"
    ]
    await run(job())  # delivered by now: not asked for again
    assert len([r for r in fake.requests if r.method == "POST"]) == 1


async def test_the_job_raises_githubs_error_so_the_worker_retries(
    runtime: Runtime, fake: FakeGithub, shared: ProviderShared
) -> None:
    fake.inject(Fault("server_error", method="GET", path="/app/hook/deliveries", times=1))
    with pytest.raises(Transient, match="list webhook deliveries"):
        await job_handlers(runtime, shared)[GITHUB_REDELIVER_JOB](job())


async def test_the_client_secret_is_stored_encrypted_and_bound_to_its_app(
    runtime: Runtime, fake: FakeGithub
) -> None:
    async with runtime.sessions() as session:
        row = (await session.execute(select(GithubApp))).scalar_one()
    assert row.client_id == "Iv1.client"
    assert row.client_secret_enc is not None
    assert "client-secret-value" not in row.client_secret_enc
    secret = runtime.vault.decrypt(row.client_secret_enc, github_app_owner(row.id, "client_secret"))
    assert secret.reveal() == "client-secret-value"


def test_the_schedule_has_the_job_every_interval_and_none_at_zero(runtime: Runtime) -> None:
    every = runtime.settings.model_copy(update={"github_redeliver_interval": 120.0})
    [redeliver] = [j for j in periodic_jobs(every) if j.kind == GITHUB_REDELIVER_JOB]
    assert redeliver.every == 120.0
    off = runtime.settings.model_copy(update={"github_redeliver_interval": 0.0})
    assert GITHUB_REDELIVER_JOB not in {j.kind for j in periodic_jobs(off)}


async def test_workers_queue_the_job_once_per_period_and_it_redelivers(
    runtime: Runtime, fake: FakeGithub, shared: ProviderShared
) -> None:
    """Two workers with the real handlers and schedule: each period's job is queued once, and
    the first that runs asks GitHub for the failed delivery."""
    failed = fake.add_delivery(
        "g-9", status_code=502, delivered_at=datetime.now(UTC) - timedelta(minutes=3)
    )
    settings = runtime.settings.model_copy(update={"github_redeliver_interval": 0.5})
    config = WorkerConfig(
        poll_interval=0.05, periodic=periodic_jobs(settings), periodic_check_seconds=0.05
    )
    handlers = job_handlers(runtime, shared)
    workers = [Worker(runtime.sessions, handlers, config, worker_id=f"w{n}") for n in range(2)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    await asyncio.sleep(2.6)
    stop.set()
    await asyncio.gather(*tasks)
    async with runtime.sessions() as session:
        rows = (
            await session.execute(select(Job).where(Job.kind == GITHUB_REDELIVER_JOB))
        ).scalars()
        periods = [int(row.payload["period"]) for row in rows]
    assert 3 <= len(periods) <= 6  # the first period only starts the count
    assert len(periods) == len(set(periods))  # no period queued twice
    attempts = [r.path for r in fake.requests if r.method == "POST"]
    # Asked once: later runs see the delivery redelivered since.
    assert attempts == [f"/app/hook/deliveries/{failed}/attempts"]
