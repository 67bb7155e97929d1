"""``aac jobs list --dead`` and ``aac jobs retry ID`` through the CLI, on both engines: what
an operator sees, what changes in the database, and that a refused retry changes nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.runtime import Runtime
from storage import queue
from storage.models import Job
from storage.types import utcnow
from tests.bot.test_cli import aac
from tests.conftest import TEST_KEYS
from tests.db_snapshot import snapshot

KEYS = {"AAC_SECRET_KEYS": TEST_KEYS}


async def _dead_job(runtime: Runtime, unique_key: str | None = None) -> int:
    """A job that ran out of attempts, as the worker leaves it."""
    async with runtime.sessions.begin() as session:
        job_id = await queue.enqueue(
            session, "publish_cycle", {"cycle": "c-1"}, unique_key=unique_key, max_attempts=3
        )
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                status=queue.JobStatus.DEAD,
                attempts=3,
                last_error="AuthFailed: token revoked\nTraceback (most recent call last): ...",
                finished_at=utcnow(),
                run_at=utcnow() - timedelta(hours=1),
            )
        )
    return job_id


async def _queued_job(runtime: Runtime, unique_key: str | None = None) -> int:
    async with runtime.sessions.begin() as session:
        return await queue.enqueue(
            session, "analyse_cycle", {"cycle": "c-1"}, unique_key=unique_key
        )


async def _job(runtime: Runtime, job_id: int) -> Job:
    async with runtime.sessions() as session:
        return (await session.execute(select(Job).where(Job.id == job_id))).scalar_one()


async def test_list_dead_then_retry(runtime: Runtime) -> None:
    db = runtime.settings.database_url
    dead = await _dead_job(runtime)
    waiting = await _queued_job(runtime)

    listed = aac("jobs", "list", "--dead", db=db, env=KEYS)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 1  # the queued job is not listed
    fields = lines[0].split("\t")
    assert fields[:4] == [str(dead), "publish_cycle", "dead", "attempts 3/3"]
    assert fields[-1] == "AuthFailed: token revoked"  # first line of the error only

    retried = aac("jobs", "retry", str(dead), db=db, env=KEYS)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == f"job {dead} re-queued"
    job = await _job(runtime, dead)
    assert (job.status, job.attempts, job.finished_at) == ("queued", 0, None)
    assert job.run_at > utcnow() - timedelta(minutes=1)  # runnable now, not an hour ago
    assert (await _job(runtime, waiting)).status == "queued"

    after = aac("jobs", "list", "--dead", db=db, env=KEYS)
    assert after.returncode == 0
    assert after.stdout.strip() == "no dead jobs"


async def test_retry_of_an_unknown_or_live_job_is_refused_and_changes_nothing(
    runtime: Runtime,
) -> None:
    db = runtime.settings.database_url
    await _dead_job(runtime)
    waiting = await _queued_job(runtime)
    before = await snapshot(runtime.engine)

    unknown = aac("jobs", "retry", "999999", db=db, env=KEYS)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "aac: no job 999999; see `aac jobs list --dead`"

    live = aac("jobs", "retry", str(waiting), db=db, env=KEYS)
    assert live.returncode == 2
    assert live.stderr.strip() == (
        f"aac: job {waiting} is queued, not dead: only dead jobs can be retried"
    )
    assert await snapshot(runtime.engine) == before


async def test_retry_of_a_dead_job_whose_work_is_queued_again_names_the_new_job(
    runtime: Runtime,
) -> None:
    """The dead job's unique key is taken by a newer queued job (e.g. the next push queued the
    same publication): re-queueing would duplicate it and the unique index forbids it."""
    db = runtime.settings.database_url
    dead = await _dead_job(runtime, unique_key="publish:c-1")
    again = await _queued_job(runtime, unique_key="publish:c-1")
    before = await snapshot(runtime.engine)

    retried = aac("jobs", "retry", str(dead), db=db, env=KEYS)
    assert retried.returncode == 2, retried.stderr
    assert retried.stderr.strip() == (
        f"aac: job {dead} is already queued again as job {again}; nothing to retry"
    )
    assert "Traceback" not in retried.stderr
    assert await snapshot(runtime.engine) == before

    # Once the newer job has run, the dead one can be retried.
    async with runtime.sessions.begin() as session:
        await session.execute(update(Job).where(Job.id == again).values(status="done"))
    assert aac("jobs", "retry", str(dead), db=db, env=KEYS).returncode == 0
    assert (await _job(runtime, dead)).status == "queued"
