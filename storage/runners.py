"""Testing nodes and their work: registration and runner tokens, secrets named by ``.aac.yml``,
runner jobs under leases, and their masked logs.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.apikeys import hash_token, live_token_row, new_token
from storage.models import (
    Organization,
    Runner,
    RunnerJob,
    RunnerLogChunk,
    RunnerRegistration,
    RunnerSecret,
)
from storage.secret_fields import runner_secret_owner
from storage.types import utcnow
from storage.vault import Secret, Vault

REGISTRATION_PREFIX = "aacreg_"
RUNNER_PREFIX = "aacr_"
RUNNER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
# last_seen_at is the heartbeat `aac runner list` shows: written at most this often.
SEEN_RESOLUTION = timedelta(seconds=5)
# A job's stored log stops growing here; the runner is told, so it stops sending.
MAX_LOG_BYTES = 10 * 1024 * 1024
CLAIM_CANDIDATES = 50

ACTIVE_STATES = ("awaiting_approval", "queued", "running")


class JobState:
    AWAITING_APPROVAL = "awaiting_approval"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    FAILED = "failed"  # an infrastructure error: checkout failed, or the runner kept vanishing
    REFUSED = "refused"  # a fork's code, and the organisation does not run forks


class RunnerError(Exception):
    """A named problem with a runner, token or secret; never carries a token."""


# -- registration and runner tokens ------------------------------------------------------------


async def create_registration(session: AsyncSession, org: Organization) -> str:
    """A new registration token for ``org``; returned once, stored hashed."""
    prefix, full = new_token(REGISTRATION_PREFIX)
    session.add(RunnerRegistration(org_id=org.id, prefix=prefix, token_hash=hash_token(full)))
    await session.flush()
    return full


async def _live_registration(session: AsyncSession, presented: str) -> RunnerRegistration | None:
    return await live_token_row(
        session,
        RunnerRegistration,
        presented,
        key_prefix=REGISTRATION_PREFIX,
        hash_column="token_hash",
    )


async def register_runner(
    session: AsyncSession, registration_token: str, name: str, labels: Sequence[str]
) -> tuple[Runner, str] | None:
    """A runner token for a node presenting a live registration token (None otherwise).

    Registering a name again replaces that runner's token: a node that lost its token (it is
    kept in memory only) registers anew, and the old token stops working.
    """
    registration = await _live_registration(session, registration_token)
    if registration is None:
        return None
    return await issue_runner_token(session, registration.org_id, name, labels)


async def issue_runner_token(
    session: AsyncSession, org_id: int, name: str, labels: Sequence[str]
) -> tuple[Runner, str]:
    """A (new) token for the runner ``name`` of the organisation; the old one stops working."""
    if not RUNNER_NAME.match(name):
        raise RunnerError(
            f"runner name {name[:100]!r} is not valid: 1-100 letters, digits, '.', '_', '-'"
        )
    prefix, full = new_token(RUNNER_PREFIX)
    runner = (
        await session.execute(select(Runner).where(Runner.org_id == org_id, Runner.name == name))
    ).scalar_one_or_none()
    if runner is None:
        runner = Runner(org_id=org_id, name=name)
        session.add(runner)
    runner.labels = sorted(set(labels))
    runner.prefix, runner.token_hash = prefix, hash_token(full)
    runner.revoked_at = None
    runner.last_seen_at = utcnow()
    await session.flush()
    return runner, full


async def authenticate_runner(session: AsyncSession, presented: str) -> Runner | None:
    """The live runner behind ``presented`` (constant-time hash compare), or None."""
    row = await live_token_row(
        session, Runner, presented, key_prefix=RUNNER_PREFIX, hash_column="token_hash"
    )
    if row is None:
        return None
    now = utcnow()
    if row.last_seen_at is None or now - row.last_seen_at > SEEN_RESOLUTION:
        row.last_seen_at = now
    return row


async def list_runners(session: AsyncSession, org_id: int | None = None) -> list[Runner]:
    """Runners, by organisation and name."""
    query = select(Runner).order_by(Runner.org_id, Runner.name)
    if org_id is not None:
        query = query.where(Runner.org_id == org_id)
    return list((await session.execute(query)).scalars())


async def revoke_runner(session: AsyncSession, org: Organization, name: str) -> Runner:
    """Revoke a runner's token; its running job is re-queued when its lease runs out."""
    runner = (
        await session.execute(select(Runner).where(Runner.org_id == org.id, Runner.name == name))
    ).scalar_one_or_none()
    if runner is None:
        raise RunnerError(f"no runner {name!r} in {org.slug}; list them with `aac runner list`")
    runner.revoked_at = runner.revoked_at or utcnow()
    return runner


async def revoke_registrations(session: AsyncSession, org: Organization) -> int:
    """Revoke every registration token of ``org``; runners already registered keep working."""
    result = await session.execute(
        update(RunnerRegistration)
        .where(RunnerRegistration.org_id == org.id, RunnerRegistration.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- secrets -----------------------------------------------------------------------------------


async def set_secret(
    session: AsyncSession, vault: Vault, org: Organization, name: str, value: str
) -> None:
    """Store (or replace) a secret a suite's environment may name; encrypted, bound to org."""
    if not SECRET_NAME.match(name):
        raise RunnerError(
            f"secret name {name[:100]!r} is not valid: letters, digits, '.', '_', '-'"
        )
    if not value:
        raise RunnerError("the secret value is empty")
    row = (
        await session.execute(
            select(RunnerSecret).where(RunnerSecret.org_id == org.id, RunnerSecret.name == name)
        )
    ).scalar_one_or_none()
    if row is None:
        row = RunnerSecret(org_id=org.id, name=name)
        session.add(row)
    row.value_enc = vault.encrypt(value, runner_secret_owner(org.id, name))
    await session.flush()


async def load_secrets(
    session: AsyncSession, vault: Vault, org_id: int, names: Iterable[str]
) -> dict[str, Secret]:
    """The named secrets, decrypted; RunnerError naming those the organisation lacks."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = (
        await session.execute(
            select(RunnerSecret).where(RunnerSecret.org_id == org_id, RunnerSecret.name.in_(wanted))
        )
    ).scalars()
    found = {r.name: vault.decrypt(r.value_enc, runner_secret_owner(org_id, r.name)) for r in rows}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise RunnerError(
            f"secret {', '.join(missing)} is not set; store it with "
            f"`aac runner secret set --org ORG --name {missing[0]}`"
        )
    return found


# -- jobs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expired:
    """A running job whose runner stopped renewing its lease: re-queued, or failed for good."""

    job: RunnerJob
    failed: bool


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def claim_job(
    session: AsyncSession, runner: Runner, *, lease_seconds: float
) -> RunnerJob | None:
    """Assign the oldest queued job whose labels the runner has, under a lease.

    On SQLite the runner row is written first, so the transaction holds the write lock before
    it reads (no stale read between two claimers). On PostgreSQL the candidates are read
    unlocked and then locked one at a time with FOR UPDATE SKIP LOCKED: locking every candidate
    at once would hide them all from the other claimers.
    """
    now = utcnow()
    postgresql = _is_postgresql(session)
    if not postgresql:
        await session.execute(update(Runner).where(Runner.id == runner.id).values(last_seen_at=now))
    candidates = await session.execute(
        select(RunnerJob.id, RunnerJob.labels)
        .where(RunnerJob.org_id == runner.org_id, RunnerJob.state == JobState.QUEUED)
        .order_by(RunnerJob.id)
        .limit(CLAIM_CANDIDATES)
    )
    have = set(runner.labels or [])
    for job_id, labels in candidates.all():
        if not set(labels or []) <= have:
            continue
        lock = select(RunnerJob).where(RunnerJob.id == job_id, RunnerJob.state == JobState.QUEUED)
        if postgresql:
            lock = lock.with_for_update(skip_locked=True)
        job = (await session.execute(lock.execution_options(populate_existing=True))).scalar()
        if job is None:
            continue  # another runner holds or took it
        job.state = JobState.RUNNING
        job.runner_id, job.runner_name = runner.id, runner.name
        job.attempts += 1
        job.assigned_at = now
        job.command_started_at = None
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)
        await session.flush()
        return job
    return None


async def has_queued_job(session: AsyncSession, org_id: int) -> bool:
    """Whether any job waits in this organisation: a cheap read before a claim's write."""
    found = await session.execute(
        select(RunnerJob.id)
        .where(RunnerJob.org_id == org_id, RunnerJob.state == JobState.QUEUED)
        .limit(1)
    )
    return found.first() is not None


async def expire_leases(session: AsyncSession, *, now: datetime | None = None) -> list[Expired]:
    """Running jobs whose lease ran out: back to the queue, or failed after their last attempt.

    A cancelled job whose runner vanished is simply cancelled.
    """
    now = now or utcnow()
    query = select(RunnerJob).where(
        RunnerJob.state == JobState.RUNNING, RunnerJob.lease_expires_at < now
    )
    if _is_postgresql(session):
        query = query.with_for_update(skip_locked=True)
    expired: list[Expired] = []
    for job in (await session.execute(query)).scalars():
        who = job.runner_name or "its runner"
        job.lease_expires_at = None
        job.runner_id = None
        if job.cancel_requested:
            job.state, job.finished_at = JobState.CANCELLED, now
            continue
        if job.attempts >= job.max_attempts:
            job.state, job.finished_at = JobState.FAILED, now
            job.reason = (
                f"infrastructure error: {who} stopped reporting (attempt {job.attempts} of "
                f"{job.max_attempts}); no attempts left"
            )
            expired.append(Expired(job, failed=True))
        else:
            job.state = JobState.QUEUED
            job.reason = f"re-queued: {who} stopped reporting during attempt {job.attempts}"
            expired.append(Expired(job, failed=False))
    await session.flush()
    return expired


async def held_job(session: AsyncSession, runner: Runner, job_id: int) -> RunnerJob | None:
    """The job if this runner holds it now (running under its lease), else None."""
    job = await session.get(RunnerJob, job_id, populate_existing=True)
    if job is None or job.runner_id != runner.id or job.state != JobState.RUNNING:
        return None
    return job


def renew_lease(job: RunnerJob, *, lease_seconds: float) -> None:
    """Extend the lease when half of it is gone (a heartbeat need not write every time)."""
    now = utcnow()
    if job.lease_expires_at is None or job.lease_expires_at - now < timedelta(
        seconds=lease_seconds / 2
    ):
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)


async def cancel_cycle_jobs(session: AsyncSession, cycle_ids: Sequence[str], reason: str) -> int:
    """Cancel the runner jobs of these cycles: pending ones at once, running ones are flagged
    and their runner, told on its next heartbeat, kills the command."""
    if not cycle_ids:
        return 0
    now = utcnow()
    pending = await session.execute(
        update(RunnerJob)
        .where(
            RunnerJob.cycle_id.in_(cycle_ids),
            RunnerJob.state.in_((JobState.QUEUED, JobState.AWAITING_APPROVAL)),
        )
        .values(state=JobState.CANCELLED, reason=reason, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    running = await session.execute(
        update(RunnerJob)
        .where(RunnerJob.cycle_id.in_(cycle_ids), RunnerJob.state == JobState.RUNNING)
        .values(cancel_requested=True, reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(pending.rowcount or 0) + int(running.rowcount or 0)  # type: ignore[attr-defined]


async def job_for_cycle(session: AsyncSession, cycle_id: str) -> RunnerJob | None:
    """The runner job of a cycle, if its suite runs on testing nodes."""
    return (
        await session.execute(select(RunnerJob).where(RunnerJob.cycle_id == cycle_id))
    ).scalar_one_or_none()


async def current_jobs(session: AsyncSession, runner_ids: Sequence[int]) -> dict[int, RunnerJob]:
    """The job each of these runners holds now."""
    if not runner_ids:
        return {}
    rows = await session.execute(
        select(RunnerJob).where(
            RunnerJob.runner_id.in_(runner_ids), RunnerJob.state == JobState.RUNNING
        )
    )
    return {job.runner_id: job for job in rows.scalars() if job.runner_id is not None}


# -- logs --------------------------------------------------------------------------------------


async def append_log(session: AsyncSession, job: RunnerJob, seq: int, text: str) -> bool:
    """Store one (already masked) chunk; False when the job's log is full or ``seq`` was
    stored before (a retried request)."""
    size = len(text.encode())
    if job.log_bytes + size > MAX_LOG_BYTES:
        return False
    exists = await session.execute(
        select(RunnerLogChunk.id).where(
            RunnerLogChunk.job_id == job.id,
            RunnerLogChunk.attempt == job.attempts,
            RunnerLogChunk.seq == seq,
        )
    )
    if exists.first() is not None:
        return True
    session.add(RunnerLogChunk(job_id=job.id, seq=seq, attempt=job.attempts, text=text))
    job.log_bytes += size
    await session.flush()
    return True


async def read_log(session: AsyncSession, job_id: int, *, tail_bytes: int | None = None) -> str:
    """The stored log of a job (its last attempt's chunks in order); the tail when asked."""
    last_attempt = (
        select(func.max(RunnerLogChunk.attempt))
        .where(RunnerLogChunk.job_id == job_id)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(RunnerLogChunk.text)
        .where(RunnerLogChunk.job_id == job_id, RunnerLogChunk.attempt == last_attempt)
        .order_by(RunnerLogChunk.seq)
    )
    text = "".join(rows.scalars())
    if tail_bytes is not None and len(text) > tail_bytes:
        cut = text[-tail_bytes:]
        text = cut.split("\n", 1)[1] if "\n" in cut else cut
    return text
