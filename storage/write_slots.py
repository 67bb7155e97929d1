"""Write slots in the database: one writer at a time per SCM installation across every process,
and a minimum gap between one write's end and the next one's start.

GitHub asks integrators to make content-creating calls for one installation serially and at
least a second apart. An asyncio lock does that inside one process; `aac serve --processes N`
and scaled-out `aac worker`s need the slot where all of them look, which is this table.

A holder keeps the slot's row under a lease, so a process that died mid-write blocks the slot
only until the lease ends. Leases are written and compared by the database's clock
(storage/clock.py), never a host's, so a host whose clock runs ahead cannot take a live slot.
Every transaction here is short: nothing stays open across the HTTP call, so SQLite's single
writer is never held hostage by a slow SCM.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, Update, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.clock import db_epoch
from storage.models import WriteSlot

log = logging.getLogger("aac.write_slots")

# Longer than one SCM request can take (the HTTP client gives up after 20 s), so a live holder
# never loses its slot, and short enough that a crashed one does not stall publishing for long.
DEFAULT_LEASE_SECONDS = 60.0
# How often a waiter looks again while another process holds the slot.
DEFAULT_POLL_SECONDS = 0.05

_T = cast(Table, WriteSlot.__table__)


class LeaseLost(Exception):
    """A held slot's lease ran out: another process may hold the slot now, so the write it
    guards must not be sent."""


@dataclass(slots=True)
class Hold:
    """An acquired slot: which row, and the holder id that must match on release."""

    slot: str
    holder: str
    interval: float
    lost: bool = False  # set once a renewal found the slot taken over
    # When the database last confirmed the lease (monotonic: a duration, never a stored time).
    confirmed: float = field(default_factory=time.monotonic)


def slot_id(key: str) -> str:
    """The row id of a key: its SHA-256, so no URL or token fingerprint is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


class WriteSlots:
    """Cross-process write serialisation and pacing per key, kept in the database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.engine = engine
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._sleep = sleep
        self._dialect = engine.dialect.name
        self._process = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self._holds = itertools.count(1)
        self._background: set[asyncio.Task[bool]] = set()

    @contextlib.asynccontextmanager
    async def hold(self, key: str, interval: float) -> AsyncIterator[None]:
        """Wait for the key's slot, hold it for the body, then keep it free for ``interval``."""
        async with self.lease(key, interval):
            yield

    @contextlib.asynccontextmanager
    async def lease(self, key: str, interval: float) -> AsyncIterator[Hold]:
        """``hold``, giving the body its ``Hold`` to ``confirm`` before each write it sends.

        The lease is renewed while the body runs, however long it takes (a paced write can
        queue behind many others), so only a holder that died or lost the database for a
        whole lease loses its slot.
        """
        held = await self.acquire(key, interval)
        renewer = asyncio.create_task(self._renew(held))
        try:
            yield held
        finally:
            renewer.cancel()
            # Shielded: a cancelled write must still hand the slot on, or it waits for the lease.
            await asyncio.shield(self._finish(held, renewer))

    async def acquire(self, key: str, interval: float) -> Hold:
        """Wait until the slot is free and its gap has passed, then take it under a lease."""
        held = Hold(slot_id(key), f"{self._process}:{next(self._holds)}", interval)
        while True:
            attempt = asyncio.ensure_future(self._try_acquire(held))
            try:
                wait = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # The attempt may still take the slot; if it does, give it straight back.
                attempt.add_done_callback(functools.partial(self._abandon, held))
                raise
            if wait <= 0:
                return held
            await self._sleep(wait)

    async def release(self, held: Hold) -> bool:
        """Free the slot and set when the next write may start; False if the lease had run out
        (another process may have written meanwhile), which is logged."""
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    update(_T)
                    .where(_T.c.slot == held.slot, _T.c.holder == held.holder)
                    .values(
                        holder=None,
                        held_until=None,
                        next_at=db_epoch(self._dialect) + held.interval,
                    )
                )
        except Exception:
            log.warning("could not release a write slot; it frees itself when its lease ends")
            return False
        if result.rowcount != 1:
            log.warning(
                "a write outlasted its slot's lease; another process may have written meanwhile",
                extra={"lease_seconds": self.lease_seconds},
            )
            return False
        return True

    async def _finish(self, held: Hold, renewer: asyncio.Task[None]) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        await self.release(held)

    async def confirm(self, held: Hold) -> None:
        """Raise LeaseLost unless the slot is still ours by the database's clock; extends the
        lease. Called right before a write is sent, so a write whose lease ran out is not."""
        if held.lost or time.monotonic() - held.confirmed >= self.lease_seconds:
            held.lost = True
            raise LeaseLost("the write slot's lease ran out; the write was not sent")
        asked = time.monotonic()
        async with self.engine.begin() as conn:
            result = await conn.execute(self._extend(held, live_only=True))
        if result.rowcount != 1:
            held.lost = True
            raise LeaseLost("another process holds the write slot now; the write was not sent")
        held.confirmed = asked

    def _extend(self, held: Hold, *, live_only: bool) -> Update:
        now = db_epoch(self._dialect)
        mine = [_T.c.slot == held.slot, _T.c.holder == held.holder]
        if live_only:
            mine.append(_T.c.held_until >= now)
        return update(_T).where(*mine).values(held_until=now + self.lease_seconds)

    async def _renew(self, held: Hold) -> None:
        """Push the lease forward every third of it while the slot is held."""
        while True:
            await self._sleep(self.lease_seconds / 3)
            asked = time.monotonic()
            try:
                async with self.engine.begin() as conn:
                    result = await conn.execute(self._extend(held, live_only=False))
            except Exception:
                # The database is unwell; the next renewal may get through before the lease ends.
                log.warning("could not renew a write slot's lease")
                continue
            if result.rowcount != 1:
                held.lost = True
                log.warning("lost a write slot while holding it; its lease had run out")
                return
            held.confirmed = asked

    def _abandon(self, held: Hold, attempt: asyncio.Future[float]) -> None:
        """A cancelled acquire whose last attempt took the slot after all: release it."""
        if attempt.cancelled() or attempt.exception() is not None or attempt.result() > 0:
            return
        task = asyncio.ensure_future(self.release(held))
        self._background.add(task)  # a reference, so the task is not collected midway
        task.add_done_callback(self._background.discard)

    async def _try_acquire(self, held: Hold) -> float:
        """Take the slot if possible: 0 when taken, else how long to wait before trying again.

        Looks first with a read, so waiters polling a busy slot never take the write lock.
        """
        now = db_epoch(self._dialect)
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(_T.c.holder, _T.c.held_until, _T.c.next_at, now.label("now")).where(
                        _T.c.slot == held.slot
                    )
                )
            ).first()
        if row is not None:
            # Waits are durations between two of the database's own times.
            db_now = float(row.now)
            if row.holder is not None and row.held_until >= db_now:
                return min(self.poll_seconds, float(row.held_until) - db_now + 0.001)
            if row.next_at > db_now:
                return max(float(row.next_at) - db_now, 0.001)
        async with self.engine.begin() as conn:
            if row is None:
                # First write for this key anywhere: create its row taken by us. Another
                # process creating it at the same moment makes ours a no-op, and we look again.
                created = await conn.execute(
                    _insert_if_absent(conn.dialect.name).values(
                        slot=held.slot,
                        holder=held.holder,
                        held_until=now + self.lease_seconds,
                        next_at=0.0,
                    )
                )
                taken = created.rowcount == 1
            else:
                # The guard repeats the read's test: another process may have taken it meanwhile.
                result = await conn.execute(
                    update(_T)
                    .where(
                        _T.c.slot == held.slot,
                        or_(_T.c.holder.is_(None), _T.c.held_until < now),
                        _T.c.next_at <= now,
                    )
                    .values(holder=held.holder, held_until=now + self.lease_seconds)
                )
                taken = result.rowcount == 1
        if taken:
            held.confirmed = time.monotonic()
            return 0.0
        return self.poll_seconds


def _insert_if_absent(dialect: str) -> postgresql.Insert | sqlite.Insert:
    if dialect == "postgresql":
        return postgresql.insert(_T).on_conflict_do_nothing(index_elements=["slot"])
    return sqlite.insert(_T).on_conflict_do_nothing(index_elements=["slot"])
