"""The durable job queue: jobs are rows, claimed under leases, retried with backoff.

Enqueueing takes the caller's session, so accepting an event and queuing its work commit
together. Claiming is one atomic UPDATE ... RETURNING; on PostgreSQL the candidate rows are
picked with FOR UPDATE SKIP LOCKED so many workers never contend for the same row.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Executable,
    Float,
    Select,
    String,
    Table,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.clock import db_now
from storage.db import SQLITE_BEGIN
from storage.models import Job
from storage.types import utcnow

NOTIFY_CHANNEL = "aac_jobs"
# PostgreSQL serialises the commits of transactions that NOTIFY. Under a stream of enqueues one
# notification per interval wakes idle workers; busy workers claim again without waiting, and
# a job enqueued inside the interval waits at most one poll interval.
NOTIFY_INTERVAL_SECONDS = 0.05
MAX_ERROR_CHARS = 4000

# The hot statements are built once with bound parameters: building and cache-keying a fresh
# ORM statement per call cost more CPU than the database spent running it.
_jobs: Table = Job.__table__  # type: ignore[assignment]
# A session (the caller's transaction) or a Core connection (the worker's own).
Executor = AsyncSession | AsyncConnection


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter between ``base`` and ``cap`` seconds."""

    base: float = 2.0
    cap: float = 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt + 1``."""
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker holds under a lease: plain data, detached from any session."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    unique_key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int = 5,
) -> int:
    """Add a job in the caller's transaction; a pending job with the same unique key wins."""
    if unique_key is not None:
        existing = await _pending_with_key(session, unique_key)
        if existing is not None:
            return existing
    now = utcnow()
    params = {
        "kind": kind,
        "payload": payload or {},
        "unique_key": unique_key,
        "max_attempts": max_attempts,
        "run_at": run_at or now,
        "created_at": now,
    }
    dialect = session.get_bind().dialect
    if unique_key is None and dialect.name == "sqlite":
        job_id = await _insert_on_sqlite_driver(session, dialect, params)
    elif unique_key is None:
        job_id = int((await session.execute(_INSERT, params)).scalar_one())
    else:
        try:
            async with session.begin_nested():
                job_id = int((await session.execute(_INSERT, params)).scalar_one())
        except IntegrityError:
            # Another transaction queued the same key between our check and insert.
            existing = await _pending_with_key(session, unique_key)
            if existing is None:
                raise
            return existing
    if dialect.name == "postgresql" and _throttle.due():
        await session.execute(
            text("SELECT pg_notify(:channel, :kind)"),
            {
                "channel": NOTIFY_CHANNEL,
                "kind": kind,
            },
        )
    return job_id


async def _insert_on_sqlite_driver(
    session: AsyncSession, dialect: Dialect, params: dict[str, Any]
) -> int:
    """_INSERT in one call to aiosqlite's thread instead of SQLAlchemy's four (cursor, execute,
    fetch, close), which also shortens how long the write lock is held.

    The driver call bypasses storage/db.py's hook that opens the transaction before the first
    write, so the transaction is opened here when this is its first write; the session commits.
    """
    driver = (await (await session.connection()).get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.in_transaction:
        await driver.execute_fetchall(SQLITE_BEGIN)
    json, when = _sqlite_binds(dialect)
    rows = await driver.execute_fetchall(
        _SQLITE_INSERT,
        (
            params["kind"],
            json(params["payload"]),
            params["max_attempts"],
            when(params["run_at"]),
            when(params["created_at"]),
        ),
    )
    return int(next(iter(rows))[0])


_SQLITE_INSERT = (
    "INSERT INTO jobs (kind, payload, unique_key, status, attempts, max_attempts, run_at,"
    f" created_at) VALUES (?, ?, NULL, '{JobStatus.QUEUED}', 0, ?, ?, ?) RETURNING id"
)


@functools.cache
def _sqlite_binds(dialect: Dialect) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The column types' own bind conversions, so rows match what SQLAlchemy writes."""

    def converter(column: Column[Any]) -> Callable[[Any], Any]:
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        return process if process is not None else (lambda value: value)

    return converter(_jobs.c.payload), converter(_jobs.c.run_at)


class _NotifyThrottle:
    """At most one NOTIFY per interval from this process."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True


_throttle = _NotifyThrottle(NOTIFY_INTERVAL_SECONDS)

# A Core INSERT ... RETURNING: the ORM's unit-of-work bookkeeping costs more than the
# statement itself on the enqueue hot path.
_INSERT = (
    insert(_jobs)
    .values(
        kind=bindparam("kind"),
        payload=bindparam("payload"),
        unique_key=bindparam("unique_key"),
        status=JobStatus.QUEUED,
        attempts=0,
        max_attempts=bindparam("max_attempts"),
        run_at=bindparam("run_at"),
        created_at=bindparam("created_at"),
    )
    .returning(_jobs.c.id)
)


async def _pending_with_key(session: AsyncSession, unique_key: str) -> int | None:
    result = await session.execute(
        select(Job.id).where(Job.unique_key == unique_key, Job.status == JobStatus.QUEUED)
    )
    return result.scalar_one_or_none()


async def claim(
    session: Executor,
    worker_id: str,
    *,
    lease_seconds: float,
    limit: int = 1,
    kinds: list[str] | None = None,
) -> list[ClaimedJob]:
    """Atomically take up to ``limit`` due jobs (or jobs whose lease expired) for ``worker_id``.

    Leases are written and checked by the database's clock (storage/clock.py), so a worker
    whose host clock runs ahead cannot see a live lease as expired.

    A keyed job waits while a job with its unique key runs; an expired job that had its last
    attempt is parked dead instead. The caller commits right after, so the lease is visible to
    other workers.
    """
    stmt = _claim_statement(_is_postgresql(session), bool(kinds))
    params: dict[str, Any] = {
        "lease_seconds": lease_seconds,
        "worker": worker_id,
        "limit": limit,
        "kinds": kinds or [],
    }
    rows = (await session.execute(stmt, params)).all()
    return sorted(
        (
            ClaimedJob(r.id, r.kind, r.payload, r.attempts, r.max_attempts)
            for r in rows
            if r.status == JobStatus.RUNNING  # the others were parked dead
        ),
        key=lambda job: job.id,
    )


@functools.cache
def _claim_statement(postgresql: bool, with_kinds: bool) -> Executable:
    dialect = "postgresql" if postgresql else "sqlite"
    now = db_now(dialect)
    lease = db_now(dialect, bindparam("lease_seconds", type_=Float))

    def due(*conditions: ColumnElement[bool]) -> Select[tuple[int]]:
        query = select(_jobs.c.id).where(*conditions)
        if with_kinds:
            query = query.where(_jobs.c.kind.in_(bindparam("kinds", expanding=True)))
        return query.order_by(_jobs.c.run_at, _jobs.c.id)

    # Jobs whose worker died first, then queued ones up to the limit. Each branch walks
    # ix_jobs_claimable in order and stops at its limit; one OR over both made the database
    # read and sort the whole backlog on every claim. An expired job that has had its last
    # attempt is "spent": the claim parks it dead rather than hand it out again.
    expired = (
        due(_jobs.c.status == JobStatus.RUNNING, _jobs.c.lease_expires_at < now)
        .add_columns((_jobs.c.attempts >= _jobs.c.max_attempts).label("spent"))
        .limit(bindparam("limit"))
    )
    if postgresql:
        expired = expired.with_for_update(skip_locked=True)
    expired_cte = expired.cte("expired")
    room: ColumnElement[int] = (
        bindparam("limit")
        - select(func.count())
        .select_from(expired_cte)
        .where(~expired_cte.c.spent)
        .scalar_subquery()
    )
    queued = due(_jobs.c.status == JobStatus.QUEUED, _jobs.c.run_at <= now, _key_free()).limit(room)
    if postgresql:
        queued = queued.with_for_update(skip_locked=True)
    queued_cte = queued.cte("queued")
    # CTEs, not ``IN (subquery)``: PostgreSQL may re-run a LIMITed subquery per row and
    # hand out more rows than asked for.
    picked = union_all(
        select(expired_cte.c.id, expired_cte.c.spent),
        select(queued_cte.c.id, false().label("spent")),
    ).cte("picked")
    spent = picked.c.spent
    return (
        update(_jobs)
        .where(_jobs.c.id == picked.c.id)
        .values(
            status=case((spent, JobStatus.DEAD), else_=JobStatus.RUNNING),
            locked_by=case((spent, null()), else_=bindparam("worker", type_=String)),
            lease_expires_at=case((spent, null()), else_=lease),
            attempts=case((spent, _jobs.c.attempts), else_=_jobs.c.attempts + 1),
            finished_at=case((spent, now), else_=_jobs.c.finished_at),
            last_error=case((spent, _LEASE_EXPIRED_ERROR), else_=_jobs.c.last_error),
        )
        .returning(
            _jobs.c.id,
            _jobs.c.kind,
            _jobs.c.payload,
            _jobs.c.attempts,
            _jobs.c.max_attempts,
            _jobs.c.status,
        )
    )


# Why a job went dead without its handler ever failing: each of its attempts was claimed and
# never finished, failed or released (its worker was SIGKILLed, ran out of memory, or hung).
_LEASE_EXPIRED_ERROR = (
    literal("lease expired on its last attempt (")
    + cast(_jobs.c.attempts, String)
    + " of "
    + cast(_jobs.c.max_attempts, String)
    + "): its worker died or hung"
)


def _key_free() -> ColumnElement[bool]:
    """True for a job with no unique key, or whose key no running job holds.

    One running job per key, whatever its lease: a job reclaimed after its lease expired
    stays 'running' throughout, and the key's next job waits for it to end (done, dead, back in
    the queue). Why no race lets two jobs with one key run:

    - SQLite has a single writer: a claim reads and writes under the write lock, after every
      other claim has committed.
    - PostgreSQL, READ COMMITTED: this check reads the statement's snapshot and locks nothing.
      But a job enters 'running' only from 'queued', and uq_jobs_pending_unique_key lets one
      job per key be queued at a time; an INSERT of a second one waits for a claim of the
      first that is in flight. So a job with the key can be queued only after the previous
      one's claim committed, and any snapshot showing it queued shows the previous one running
      (or finished). Claimers racing for the queued job itself are settled by SKIP LOCKED.

    Jobs that already ran side by side before migration 0004 just finish.
    The status and key tests are literals, so even a generic plan can use the partial index
    ix_jobs_running_unique_key; jobs without a key never reach the subquery.
    """
    running = _jobs.alias("running")
    held = (
        select(running.c.id)
        .where(
            running.c.unique_key == _jobs.c.unique_key,
            running.c.status == literal_column(f"'{JobStatus.RUNNING}'"),
            running.c.unique_key.is_not(None),
        )
        .exists()
    )
    return or_(_jobs.c.unique_key.is_(None), ~held)


async def renew_leases(
    session: AsyncSession, worker_id: str, job_ids: list[int], *, lease_seconds: float
) -> set[int]:
    """Extend the leases this worker still holds (by the database's clock); returns the ids
    it still holds. A job missing from them was taken over after its lease ran out."""
    if not job_ids:
        return set()
    dialect = session.get_bind().dialect.name
    rows = await session.execute(
        update(_jobs)
        .where(
            _jobs.c.id.in_(job_ids),
            _jobs.c.locked_by == worker_id,
            _jobs.c.status == JobStatus.RUNNING,
        )
        .values(lease_expires_at=db_now(dialect, literal(lease_seconds, Float)))
        .returning(_jobs.c.id)
    )
    return {int(row_id) for row_id in rows.scalars()}


async def complete(session: AsyncSession, job_id: int, worker_id: str) -> bool:
    """Mark a held job done; False if the lease was lost to another worker."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.status == JobStatus.RUNNING)
        .values(status=JobStatus.DONE, finished_at=utcnow(), lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def complete_many(session: Executor, job_ids: list[int], worker_id: str) -> set[int]:
    """Mark several held jobs done in one statement; returns the ids this worker still held."""
    if not job_ids:
        return set()
    rows = await session.execute(
        _COMPLETE_MANY, {"ids": job_ids, "worker": worker_id, "now": utcnow()}
    )
    return {int(row_id) for row_id in rows.scalars()}


_COMPLETE_MANY = (
    update(_jobs)
    .where(
        _jobs.c.id.in_(bindparam("ids", expanding=True)),
        _jobs.c.locked_by == bindparam("worker"),
        _jobs.c.status == JobStatus.RUNNING,
    )
    .values(status=JobStatus.DONE, finished_at=bindparam("now"), lease_expires_at=None)
    .returning(_jobs.c.id)
)


async def complete_and_claim(
    conn: AsyncConnection,
    worker_id: str,
    done: list[int],
    *,
    lease_seconds: float,
    limit: int,
    kinds: list[str] | None = None,
) -> tuple[set[int], list[ClaimedJob]]:
    """Mark the held jobs in ``done`` finished and claim up to ``limit`` more, for a worker.

    Returns the ids of ``done`` still held and the jobs claimed. Call it outside a transaction
    and commit after: on PostgreSQL it is one statement that commits on its own, sent on the
    driver connection without BEGIN and COMMIT round trips; elsewhere it is two statements in
    the transaction they begin.
    """
    if not _is_postgresql(conn):
        held = await complete_many(conn, done, worker_id)
        claimed = []
        if limit > 0:
            claimed = await claim(
                conn, worker_id, lease_seconds=lease_seconds, limit=limit, kinds=kinds
            )
        return held, claimed
    if conn.in_transaction():
        raise ValueError("complete_and_claim commits on its own on PostgreSQL")
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    # SQLAlchemy's asyncpg dialect installs the JSONB codec, so payloads arrive decoded.
    rows = await driver.fetch(
        _PG_COMPLETE_AND_CLAIM,
        done,
        worker_id,
        float(lease_seconds),
        limit,
        kinds or [],
        not kinds,
    )
    # Finished rows come back with no kind.
    held = {int(r["id"]) for r in rows if r["kind"] is None}
    claimed = [
        ClaimedJob(r["id"], r["kind"], r["payload"], r["attempts"], r["max_attempts"])
        for r in rows
        if r["kind"] is not None
    ]
    return held, sorted(claimed, key=lambda job: job.id)


# The claim is _claim_statement's, on the database's clock (expired leases first, then queued
# jobs, each in index order; spent expired jobs parked dead; a keyed job only if no running
# job holds its key, see _key_free). Data-modifying CTEs all see one snapshot, so ``expired``
# skips the rows ``done`` finishes, and the key check skips them too: their keys are free once
# this statement commits.
_PG_COMPLETE_AND_CLAIM = """
WITH done AS (
    UPDATE jobs SET status = 'done', finished_at = statement_timestamp(), lease_expires_at = NULL
    WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND status = 'running'
    RETURNING id
), expired AS (
    SELECT id, attempts >= max_attempts AS spent FROM jobs
    WHERE status = 'running' AND lease_expires_at < statement_timestamp()
      AND id <> ALL($1::bigint[])
      AND ($6 OR kind = ANY($5::text[]))
    ORDER BY run_at, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
), queued AS (
    SELECT id FROM jobs
    WHERE status = 'queued' AND run_at <= statement_timestamp() AND ($6 OR kind = ANY($5::text[]))
      AND (unique_key IS NULL OR NOT EXISTS (
          SELECT FROM jobs running
          WHERE running.unique_key = jobs.unique_key AND running.status = 'running'
            AND running.unique_key IS NOT NULL AND running.id NOT IN (SELECT id FROM done)
      ))
    ORDER BY run_at, id
    LIMIT $4 - (SELECT count(*) FROM expired WHERE NOT spent)
    FOR UPDATE SKIP LOCKED
), dead AS (
    UPDATE jobs SET status = 'dead', finished_at = statement_timestamp(), locked_by = NULL,
        lease_expires_at = NULL,
        last_error = 'lease expired on its last attempt (' || attempts || ' of '
            || max_attempts || '): its worker died or hung'
    WHERE id = ANY(ARRAY(SELECT id FROM expired WHERE spent))
), claimed AS (
    UPDATE jobs SET status = 'running', locked_by = $2,
        lease_expires_at = statement_timestamp() + $3::float8 * interval '1 second',
        attempts = jobs.attempts + 1
    WHERE id = ANY(ARRAY(SELECT id FROM expired WHERE NOT spent UNION ALL SELECT id FROM queued))
    RETURNING id, kind, payload, attempts, max_attempts
)
SELECT id, kind, payload, attempts, max_attempts FROM claimed
UNION ALL
SELECT id, NULL, NULL, NULL, NULL FROM done
"""


def _is_postgresql(db: Executor) -> bool:
    bind = db if isinstance(db, AsyncConnection) else db.get_bind()
    return bind.dialect.name == "postgresql"


async def fail(
    session: AsyncSession,
    job: ClaimedJob,
    worker_id: str,
    error: str,
    *,
    backoff: Backoff = Backoff(),
) -> str:
    """Record a failed attempt: requeue with backoff, or park as dead after the last attempt.

    Returns the job's new status: done if a duplicate queued meanwhile takes its place.
    """
    if job.attempts < job.max_attempts:
        run_at = utcnow() + timedelta(seconds=backoff.delay(job.attempts))
        return await _back_to_queue(session, job, worker_id, run_at, error)
    await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.locked_by == worker_id, Job.status == JobStatus.RUNNING)
        .values(
            status=JobStatus.DEAD,
            finished_at=utcnow(),
            last_error=error[:MAX_ERROR_CHARS],
            locked_by=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return JobStatus.DEAD


async def reschedule(
    session: AsyncSession, job: ClaimedJob, worker_id: str, run_at: datetime, reason: str
) -> None:
    """Put a held job back for later without spending an attempt (rate limits, shutdown)."""
    await _back_to_queue(session, job, worker_id, run_at, reason, attempts=Job.attempts - 1)


async def _back_to_queue(
    session: AsyncSession,
    job: ClaimedJob,
    worker_id: str,
    run_at: datetime,
    reason: str,
    **values: Any,
) -> str:
    """Requeue a held job for ``run_at``; returns its new status.

    A job with a unique key may have a duplicate queued while it ran, and one queued job per
    key is all uq_jobs_pending_unique_key allows. The duplicate does the same work, so it takes
    this job's place, no earlier than ``run_at``, and this job ends as done.
    """
    held = (Job.id == job.id, Job.locked_by == worker_id, Job.status == JobStatus.RUNNING)
    requeue = (
        update(Job)
        .where(*held)
        .values(
            status=JobStatus.QUEUED,
            run_at=run_at,
            locked_by=None,
            lease_expires_at=None,
            last_error=reason[:MAX_ERROR_CHARS],
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    try:
        async with session.begin_nested():
            await session.execute(requeue)
        return JobStatus.QUEUED
    except IntegrityError as exc:
        conflict = exc
    later = literal(run_at, Job.run_at.type)
    duplicate = (
        await session.execute(
            update(Job)
            .where(*_queued_duplicate_of(job.id))
            .values(run_at=case((Job.run_at < later, later), else_=Job.run_at))
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if duplicate is None:
        raise conflict
    note = f"; job {duplicate}, queued with the same key, does its work"
    await session.execute(
        update(Job)
        .where(*held)
        .values(
            status=JobStatus.DONE,
            finished_at=utcnow(),
            locked_by=None,
            lease_expires_at=None,
            last_error=reason[: MAX_ERROR_CHARS - len(note)] + note,
        )
        .execution_options(synchronize_session=False)
    )
    return JobStatus.DONE


def _queued_duplicate_of(job_id: int) -> tuple[ColumnElement[bool], ...]:
    """The queued job carrying job ``job_id``'s unique key: the same work, waiting to run."""
    key = select(Job.unique_key).where(Job.id == job_id).scalar_subquery()
    return (Job.unique_key == key, Job.status == JobStatus.QUEUED, Job.id != job_id)


class AlreadyQueued(Exception):
    """Re-queueing a job would run its work twice: ``duplicate`` (None if it finished just
    now) is queued with the same unique key."""

    def __init__(self, job_id: int, duplicate: int | None) -> None:
        super().__init__(f"job {job_id}'s unique key is queued again")
        self.duplicate = duplicate


async def retry_dead(session: AsyncSession, job_id: int) -> bool:
    """Re-queue a dead job with a fresh set of attempts; False if it is not dead.

    Raises AlreadyQueued, changing nothing, when the same work is queued again (a later push
    queued the same publication): one queued job per key is all uq_jobs_pending_unique_key
    allows.
    """
    try:
        async with session.begin_nested():
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.DEAD)
                .values(status=JobStatus.QUEUED, attempts=0, run_at=utcnow(), finished_at=None)
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:
        duplicate = (
            await session.execute(select(Job.id).where(*_queued_duplicate_of(job_id)))
        ).scalar_one_or_none()
        raise AlreadyQueued(job_id, duplicate) from None
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_jobs(
    session: AsyncSession, *, status: str | None = None, limit: int = 50
) -> list[Job]:
    """Newest jobs first, optionally of one status."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    return list((await session.execute(query)).scalars())


async def counts_by_status(session: AsyncSession) -> dict[str, int]:
    """How many jobs are in each status."""
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: int(count) for status, count in rows.all()}


async def purge_done(session: AsyncSession, older_than: datetime) -> int:
    """Delete finished jobs older than a cut-off; returns how many."""
    result = await session.execute(
        delete(Job).where(Job.status == JobStatus.DONE, Job.finished_at < older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
