"""The worker: claims jobs, runs their handlers, renews leases, retries, shuts down gently."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.log import job_id_var
from providers.base import RateLimited
from storage import queue
from storage.queue import Backoff, ClaimedJob
from storage.types import utcnow

log = logging.getLogger("aac.worker")

Handler = Callable[[ClaimedJob], Awaitable[None]]
# Given the free slots, waits as long as it sees fit and says how many jobs to claim now.
Pacer = Callable[[int], Awaitable[int]]
NOTIFY_COALESCE_SECONDS = 0.01


class PermanentJobError(Exception):
    """A failure retrying cannot fix (bad payload, deleted cycle): the job goes dead at once."""


@dataclass(slots=True)
class WorkerConfig:
    concurrency: int = 4
    lease_seconds: float = 60.0
    poll_interval: float = 0.5
    shutdown_grace: float = 20.0
    backoff: Backoff = field(default_factory=Backoff)
    kinds: list[str] | None = None


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
        self._wake = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._done_batch: dict[int, asyncio.Future[bool]] = {}
        self._done_ready = asyncio.Event()
        self._notified = False
        self.processed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish or release the jobs in hand."""
        renewer = asyncio.create_task(self._renew_leases(stop))
        completer = asyncio.create_task(self._complete_batches())
        listener = await self._listen()
        try:
            while not stop.is_set():
                free = self.config.concurrency - len(self._running)
                claimed: list[ClaimedJob] = []
                if free > 0 and self.pacer is not None:
                    free = await self.pacer(free)
                if free > 0:
                    claimed = await self._claim(free)
                for job in claimed:
                    task = asyncio.create_task(self._execute(job))
                    self._running[job.id] = task
                    task.add_done_callback(functools.partial(self._finished, job.id))
                if claimed and len(claimed) == free:
                    await asyncio.sleep(0)
                    continue
                await self._idle(stop)
        finally:
            await self._drain()
            for helper in (renewer, completer):
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()

    def _on_notify(self, *_args: Any) -> None:
        self._notified = True
        self._wake.set()

    def wake(self) -> None:
        """Look for work now (the in-process web app calls this after queuing a job)."""
        self._wake.set()

    def _finished(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._wake.set()

    async def _idle(self, stop: asyncio.Event) -> None:
        self._wake.clear()
        waiter = asyncio.create_task(self._wake.wait())
        stopper = asyncio.create_task(stop.wait())
        _done, pending = await asyncio.wait(
            {waiter, stopper}, timeout=self.config.poll_interval, return_when="FIRST_COMPLETED"
        )
        for task in pending:
            task.cancel()
        if self._notified:
            # Every NOTIFY wakes every worker: a short pause lets one claim serve a burst
            # instead of N workers racing for each job.
            self._notified = False
            await asyncio.sleep(NOTIFY_COALESCE_SECONDS)

    async def _claim(self, limit: int) -> list[ClaimedJob]:
        try:
            async with self.sessions.begin() as session:
                return await queue.claim(
                    session,
                    self.worker_id,
                    lease_seconds=self.config.lease_seconds,
                    limit=limit,
                    kinds=self.config.kinds,
                )
        except Exception:
            log.exception("could not claim jobs; retrying after the poll interval")
            return []

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
            except RateLimited as exc:
                await self._settle(
                    queue.reschedule, job, self.worker_id, exc.retry_at, f"rate limited: {exc}"
                )
                log.info("job rescheduled after a rate limit", extra={"retry_at": exc.retry_at})
            except PermanentJobError as exc:
                dead = ClaimedJob(job.id, job.kind, job.payload, job.max_attempts, job.max_attempts)
                await self._settle(queue.fail, dead, self.worker_id, str(exc))
                log.error("job failed permanently", extra={"kind": job.kind, "error": str(exc)})
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                status = await self._settle(
                    queue.fail, job, self.worker_id, error, backoff=self.config.backoff
                )
                log.warning(
                    "job failed",
                    extra={"kind": job.kind, "attempt": job.attempts, "next": status},
                    exc_info=True,
                )
            else:
                if await self._complete(job.id):
                    self.processed += 1
        finally:
            job_id_var.reset(token)

    async def _complete(self, job_id: int) -> bool:
        """Mark a job done, sharing one transaction with jobs that finish meanwhile."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._done_batch[job_id] = future
        self._done_ready.set()
        return await asyncio.shield(future)

    async def _complete_batches(self) -> None:
        while True:
            await self._done_ready.wait()
            self._done_ready.clear()
            batch, self._done_batch = self._done_batch, {}
            if not batch:
                continue
            try:
                held = await self._settle(queue.complete_many, list(batch), self.worker_id)
            except Exception as exc:
                log.warning("could not record finished jobs", exc_info=True)
                for future in batch.values():
                    future.set_exception(exc)
                continue
            for job_id, future in batch.items():
                future.set_result(job_id in held)

    async def _settle(self, operation: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        async with self.sessions.begin() as session:
            return await operation(session, *args, **kw)

    async def _release(self, job: ClaimedJob, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(
                self._settle(queue.reschedule, job, self.worker_id, utcnow(), reason)
            )

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        interval = max(0.2, self.config.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            if not self._running:
                continue
            try:
                await self._settle(
                    queue.renew_leases,
                    self.worker_id,
                    list(self._running),
                    lease_seconds=self.config.lease_seconds,
                )
            except Exception:
                log.warning("could not renew leases", exc_info=True)

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

    async def _listen(self) -> Any:
        """On PostgreSQL, LISTEN for new jobs so idle workers wake at once."""
        if not self.listen_dsn:
            return None
        import asyncpg

        try:
            connection = await asyncpg.connect(self.listen_dsn)
            await connection.add_listener(queue.NOTIFY_CHANNEL, self._on_notify)
        except Exception:
            log.warning("LISTEN unavailable; falling back to polling", exc_info=True)
            return None
        return connection


def listen_dsn_for(database_url: str) -> str | None:
    """An asyncpg DSN for LISTEN/NOTIFY, or None for engines without it."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
