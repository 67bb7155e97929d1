"""LISTEN for new jobs on PostgreSQL, reconnecting in the background whenever the link drops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from storage.queue import Backoff

log = logging.getLogger("aac.worker.listen")

# asyncpg waits a minute by default; a black-holed server should not delay the next attempt that
# long. Closing is bounded too, so shutdown never hangs on a half-dead socket.
CONNECT_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 2.0


class NotifyListener:
    """One asyncpg connection LISTENing on ``channel``, reopened with backoff when it drops.

    ``listening`` turns False the moment the connection is lost, so the owner polls meanwhile.
    NOTIFYs sent while it was down are gone for good, so ``on_restored`` runs after each
    reconnect to let the owner look for work once.
    """

    def __init__(
        self,
        dsn: str,
        channel: str,
        *,
        on_notify: Callable[[], None],
        on_restored: Callable[[], None],
        backoff: Backoff,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_notify = on_notify
        self._on_restored = on_restored
        self._backoff = backoff
        self._connection: Any = None  # asyncpg ships no type hints
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def listening(self) -> bool:
        """True while NOTIFYs can arrive."""
        return self._connection is not None

    async def start(self) -> None:
        """LISTEN now if the database lets us, else keep trying in the background."""
        try:
            await self._connect()
        except Exception as exc:
            # The class only: the DSN, which may hold a password, stays out of the logs.
            log.warning(
                "LISTEN unavailable; polling for jobs and retrying LISTEN in the background",
                extra={"error": type(exc).__name__},
            )
            self._reconnect_in_background()

    async def close(self) -> None:
        """Stop reconnecting and close the connection; raises nothing."""
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        # Cleared first, so the termination callback that close() fires is not taken for a loss.
        connection, self._connection = self._connection, None
        if connection is not None:
            # On failure asyncpg aborts the socket itself; there is nothing more to do.
            with contextlib.suppress(Exception):
                await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)

    async def _connect(self) -> None:
        import asyncpg  # SQLite deployments never load the PostgreSQL driver

        connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            await connection.add_listener(self._channel, self._notified)
            connection.add_termination_listener(self._lost)
            # A loss reported while LISTEN was in flight fired no listener: ours came too late.
            if connection.is_closed():
                raise ConnectionError("the LISTEN connection closed as it opened")
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection

    def _notified(self, *_args: object) -> None:
        self._on_notify()

    def _lost(self, connection: object) -> None:
        if connection is not self._connection:
            return  # our own close(), or a connection that never became current
        self._connection = None
        log.warning("LISTEN connection lost; polling for jobs and reconnecting in the background")
        self._reconnect_in_background()

    def _reconnect_in_background(self) -> None:
        if self._closed or (self._reconnecting is not None and not self._reconnecting.done()):
            return
        self._reconnecting = asyncio.create_task(self._reconnect(), name="aac-listen-reconnect")

    async def _reconnect(self) -> None:
        attempt = 0
        while True:
            attempt += 1
            # Jittered, so the workers a database restart cut off do not all return at once.
            await asyncio.sleep(self._backoff.delay(attempt))
            try:
                await self._connect()
            except Exception as exc:
                log.debug(
                    "LISTEN reconnect failed",
                    extra={"attempt": attempt, "error": type(exc).__name__},
                )
                continue
            log.info("LISTEN connection restored; new jobs wake the worker again")
            self._on_restored()
            return
