"""The worker: claims jobs, runs their handlers, renews leases, retries, shuts down gently."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import periodic
from bot.listener import NotifyListener
from bot.log import job_id_var
from bot.periodic import PeriodicJob
from providers.base import AuthFailed, NotConfigured, NotFound, RateLimited, TooLarge
from storage import queue
from storage.queue import Backoff, ClaimedJob
from storage.types import utcnow

log = logging.getLogger("aac.worker")

Handler = Callable[[ClaimedJob], Awaitable[None]]
# Given the free slots, waits as long as it sees fit and says how many jobs to claim now.
Pacer = Callable[[int], Awaitable[int]]
NOTIFY_COALESCE_SECONDS = 0.01
# With LISTEN and no backlog, a finished job's completion waits this long for company (or a
# NOTIFY) instead of costing its own round trip; its slot was not needed meanwhile.
COMPLETION_LINGER_SECONDS = 0.05
# Reconnecting a lost LISTEN connection: quick after a blip, gentle on a database that stays down.
LISTEN_BACKOFF = Backoff(base=0.5, cap=30.0)


class PermanentJobError(Exception):
    """A failure retrying cannot fix (bad payload, deleted cycle): the job goes dead at once."""


class Decision(StrEnum):
    """What a failed job's error means for the job."""

    RETRY = "retry"  # again after a backoff, while attempts remain
    RESCHEDULE = "reschedule"  # at the time the error names, without spending an attempt
    STOP = "stop"  # dead now, the error recorded: retrying cannot fix it


# Refused credentials, a missing repository or installation, no integration, a body the
# platform will not take: the same request gets the same answer until an operator acts.
_STOPS: tuple[type[Exception], ...] = (
    PermanentJobError,
    AuthFailed,
    NotFound,
    NotConfigured,
    TooLarge,
)


def decide(exc: Exception) -> Decision:
    """The error's class alone decides: ``Transient`` and unknown errors are retried."""
    if isinstance(exc, RateLimited):
        return Decision.RESCHEDULE
    if isinstance(exc, _STOPS):
        return Decision.STOP
    return Decision.RETRY


@dataclass(slots=True)
class WorkerConfig:
    concurrency: int = 4
    lease_seconds: float = 60.0
    poll_interval: float = 0.5
    shutdown_grace: float = 20.0
    backoff: Backoff = field(default_factory=Backoff)
    kinds: list[str] | None = None
    listen_backoff: Backoff = LISTEN_BACKOFF
    # Jobs queued once per period by whichever worker looks first (bot/periodic.py).
    periodic: tuple[PeriodicJob, ...] = ()
    periodic_check_seconds: float = 30.0


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Runs handlers for claimed jobs with at most ``concurrency`` in flight."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Mapping[str, Handler],
        config: WorkerConfig,
        *,
        worker_id: str | None = None,
        listen_dsn: str | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.sessions = sessions
        self.pacer = pacer
        self.handlers = dict(handlers)
        self.config = config
        self.worker_id = worker_id or default_worker_id()
        self.listen_dsn = listen_dsn
        self._engine = _engine_of(sessions)
        self._wake = asyncio.Event()
        # Handlers in flight; each holds one of the ``concurrency`` slots.
        self._running: dict[int, asyncio.Task[None]] = {}
        # When the database last confirmed each running job's lease (this process's monotonic
        # clock: only durations are measured with it, never compared with stored times).
        self._confirmed: dict[int, float] = {}
        # Handlers that succeeded; recorded as done with the next claim, in one round trip.
        self._succeeded: list[int] = []
        self._notified = False
        self._listener = (
            NotifyListener(
                listen_dsn,
                queue.NOTIFY_CHANNEL,
                on_notify=self._on_notify,
                # NOTIFYs sent while disconnected are lost: look for work once.
                on_restored=self.wake,
                backoff=config.listen_backoff,
            )
            if listen_dsn
            else None
        )
        # The last claim filled every free slot, so more work is likely waiting.
        self._backlog = True
        self._linger: asyncio.TimerHandle | None = None
        self.processed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish or release the jobs in hand."""
        renewer = asyncio.create_task(self._renew_leases())
        scheduler = asyncio.create_task(self._schedule_periodic())
        if self._listener is not None:
            await self._listener.start()
        stopper = asyncio.ensure_future(stop.wait())
        stopper.add_done_callback(lambda _: self._wake.set())
        try:
            while not stop.is_set():
                # Cleared before the round trip, so a job finishing meanwhile re-runs the loop.
                self._wake.clear()
                if self._linger is not None:
                    self._linger.cancel()
                    self._linger = None
                free = self.config.concurrency - len(self._running)
                if free > 0 and self.pacer is not None:
                    free = await self.pacer(free)
                claimed = await self._complete_and_claim(max(0, free))
                if claimed is None:
                    await self._idle()  # the database is unwell: wait a poll interval
                    continue
                if free > 0:
                    self._backlog = len(claimed) == free
                for job in claimed:
                    task = asyncio.create_task(self._execute(job))
                    self._running[job.id] = task
                    self._confirmed[job.id] = time.monotonic()
                if claimed and len(claimed) == free:
                    await asyncio.sleep(0)
                    continue
                await self._idle()
        finally:
            await self._drain()
            with contextlib.suppress(Exception):
                await self._complete_and_claim(0)
            for helper in (renewer, scheduler, stopper):
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            if self._listener is not None:
                await self._listener.close()

    @property
    def _listening(self) -> bool:
        # Asked afresh each time: while the LISTEN connection is down this is a polling worker.
        return self._listener is not None and self._listener.listening

    def _on_notify(self) -> None:
        self._notified = True
        self._wake.set()

    def wake(self) -> None:
        """Look for work now (the in-process web app calls this after queuing a job)."""
        self._wake.set()

    async def _idle(self) -> None:
        """Wait for a wake-up (a NOTIFY, a freed slot, ``stop``) or the poll interval."""
        if not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.poll_interval):
                    await self._wake.wait()
        if self._notified:
            # Every NOTIFY wakes every worker: a short pause lets one claim serve a burst
            # instead of N workers racing for each job.
            self._notified = False
            await asyncio.sleep(NOTIFY_COALESCE_SECONDS)

    async def _complete_and_claim(self, limit: int) -> list[ClaimedJob] | None:
        """Record the succeeded jobs and claim up to ``limit`` more; None if the database failed."""
        done, self._succeeded = self._succeeded, []
        if not done and limit <= 0:
            return []
        try:
            async with self._engine.connect() as conn:
                held, claimed = await queue.complete_and_claim(
                    conn,
                    self.worker_id,
                    done,
                    lease_seconds=self.config.lease_seconds,
                    limit=limit,
                    kinds=self.config.kinds,
                )
                await conn.commit()
        except Exception:
            self._succeeded[:0] = done
            log.exception("could not record or claim jobs; retrying after the poll interval")
            return None
        self.processed += len(held)
        if len(held) < len(done):
            log.warning("lost the lease of finished jobs", extra={"jobs": len(done) - len(held)})
        return claimed

    async def _execute(self, job: ClaimedJob) -> None:
        token = job_id_var.set(job.id)
        try:
            handler = self.handlers.get(job.kind)
            try:
                if handler is None:
                    raise PermanentJobError(f"no handler for job kind {job.kind!r}")
                await handler(job)
            except asyncio.CancelledError:
                await self._release(job, "worker shut down before the job finished")
                raise
            except Exception as exc:
                await self._failed(job, exc)
            else:
                self._succeeded.append(job.id)
        finally:
            job_id_var.reset(token)
            # Freed here rather than in a done callback, so the loop's next pass sees a quick
            # job's slot free and its completion pending, and serves both in one round trip.
            self._running.pop(job.id, None)
            self._confirmed.pop(job.id, None)
            self._job_done()

    async def _failed(self, job: ClaimedJob, exc: Exception) -> None:
        """Record a failed attempt as its error's class decides."""
        decision = decide(exc)
        if decision is Decision.RESCHEDULE:
            assert isinstance(exc, RateLimited)
            await self._settle(
                queue.reschedule, job, self.worker_id, exc.retry_at, f"rate limited: {exc}"
            )
            log.info("job rescheduled after a rate limit", extra={"retry_at": exc.retry_at})
            return
        error = str(exc) if isinstance(exc, PermanentJobError) else f"{type(exc).__name__}: {exc}"
        if decision is Decision.STOP:
            dead = ClaimedJob(job.id, job.kind, job.payload, job.max_attempts, job.max_attempts)
            await self._settle(queue.fail, dead, self.worker_id, error)
            log.error("job failed permanently", extra={"kind": job.kind, "error": error})
            return
        status = await self._settle(
            queue.fail, job, self.worker_id, error, backoff=self.config.backoff
        )
        log.warning(
            "job failed",
            extra={"kind": job.kind, "attempt": job.attempts, "next": status},
            exc_info=True,
        )

    def _job_done(self) -> None:
        """Run the loop now if the freed slot can take waiting work, else soon."""
        if self._backlog or not self._listening:
            # Without LISTEN, claiming as jobs finish is how new work is found promptly.
            self._wake.set()
        elif self._linger is None:
            loop = asyncio.get_running_loop()
            self._linger = loop.call_later(COMPLETION_LINGER_SECONDS, self._wake.set)

    async def _settle(self, operation: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        async with self.sessions.begin() as session:
            return await operation(session, *args, **kw)

    async def _release(self, job: ClaimedJob, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(
                self._settle(queue.reschedule, job, self.worker_id, utcnow(), reason)
            )

    async def _schedule_periodic(self) -> None:
        """Queue the periodic jobs whose period began (once across every worker)."""
        # Only what this worker can run: another process's jobs are queued by it.
        jobs = [job for job in self.config.periodic if job.kind in self.handlers]
        if not jobs:
            return
        # A job due more often than the check would otherwise run at the check's pace.
        interval = min(self.config.periodic_check_seconds, *(job.every for job in jobs))
        while True:
            try:
                async with self.sessions.begin() as session:
                    queued = await periodic.enqueue_due(session, jobs)
                if queued:
                    self.wake()
            except Exception:
                log.warning("could not queue periodic jobs", exc_info=True)
            await asyncio.sleep(interval)

    async def _renew_leases(self) -> None:
        interval = max(0.2, self.config.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            running = list(self._running)
            held = [*running, *self._succeeded]
            if not held:
                continue
            asked = time.monotonic()
            try:
                still = await self._settle(
                    queue.renew_leases,
                    self.worker_id,
                    held,
                    lease_seconds=self.config.lease_seconds,
                )
            except Exception:
                log.warning("could not renew leases", exc_info=True)
                # Unconfirmed for a whole lease: another worker may have claimed them.
                lease = self.config.lease_seconds
                self._stop_lost(
                    [j for j in running if asked - self._confirmed.get(j, asked) >= lease]
                )
                continue
            for job_id in still:
                if job_id in self._confirmed:
                    self._confirmed[job_id] = asked
            self._stop_lost([j for j in running if j not in still])

    def _stop_lost(self, job_ids: list[int]) -> None:
        """Cancel handlers whose lease was lost, so they stop before their next side effect:
        the job is another worker's now, and two running it would do its work twice."""
        for job_id in job_ids:
            task = self._running.get(job_id)
            if task is not None and not task.done():
                log.warning("lost the lease of a running job; stopping it", extra={"job": job_id})
                task.cancel()

    async def _drain(self) -> None:
        """On shutdown: give running jobs a grace period, then cancel and release them."""
        if not self._running:
            return
        tasks = list(self._running.values())
        log.info("waiting for running jobs to finish", extra={"jobs": len(tasks)})
        _done, pending = await asyncio.wait(tasks, timeout=self.config.shutdown_grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _engine_of(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the worker needs a session factory bound to an AsyncEngine")
    return bind


def listen_dsn_for(database_url: str) -> str | None:
    """An asyncpg DSN for LISTEN/NOTIFY, or None for engines without it."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
