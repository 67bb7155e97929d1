"""Run a job's command in its own process group (or a locked-down container), stream its
output in bounded, masked chunks, and kill the whole group on timeout or cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.analysis.redact import Redactor

CHUNK_CHARS = 32 * 1024
FLUSH_SECONDS = 0.5
KILL_GRACE_SECONDS = 2.0
READ_BYTES = 64 * 1024
# Output waiting to be sent: a command far faster than the bot loses its oldest, counted.
MAX_PENDING_CHARS = 1024 * 1024
CONTAINER_WORKSPACE = "/workspace"


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of a container job."""

    cpus: str = "2"
    memory: str = "4g"
    pids: int = 4096


@dataclass(frozen=True, slots=True)
class Outcome:
    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False
    duration: float = 0.0


def docker_available() -> bool:
    """Whether ``docker`` is installed (the daemon is asked by ``docker_daemon_running``)."""
    return shutil.which("docker") is not None


async def docker_daemon_running() -> bool:
    """Whether a Docker daemon answers: only then does the node take container jobs."""
    if not docker_available():
        return False

    # A blocking run in a worker thread, not an asyncio subprocess: a node started in a
    # thread of `aac serve` (--local-runner) has an event loop no child watcher serves, and
    # waiting on the child's exit there never returns.
    def probe() -> bool:
        try:
            done = subprocess.run(
                ["docker", "info"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    return await asyncio.to_thread(probe)


def docker_command(
    *,
    image: str,
    command: str,
    checkout: Path,
    workdir: str,
    env_names: Sequence[str],
    name: str,
    limits: Limits,
) -> list[str]:
    """``docker run`` for a job: no privileges, capped CPU/memory/processes, the checkout
    mounted, variables passed by name (values travel in docker's environment, not its argv)."""
    args = [
        "docker",
        "run",
        "--rm",
        "--name",
        name,
        "--init",
        f"--cpus={limits.cpus}",
        f"--memory={limits.memory}",
        f"--pids-limit={limits.pids}",
        "--security-opt=no-new-privileges",
        "--cap-drop=ALL",
        f"--user={os.getuid()}:{os.getgid()}",
        "-v",
        f"{checkout}:{CONTAINER_WORKSPACE}",
        "-w",
        f"{CONTAINER_WORKSPACE}/{workdir}".rstrip("/."),
    ]
    for env_name in env_names:
        args += ["-e", env_name]
    return [*args, image, "/bin/sh", "-c", command]


class LogStream:
    """Collects output and hands it on in chunks of at most CHUNK_CHARS, cut at line ends
    where possible (so a secret is never split across two chunks before masking).

    At most MAX_PENDING_CHARS wait (the oldest go first, with a marker saying how much); once
    the bot's stored log is full (``mark_full``) nothing more is sent, only counted.
    """

    def __init__(self, send: Callable[[str], Awaitable[None]], redactor: Redactor) -> None:
        self._send = send
        self._redactor = redactor
        self._buffer = ""
        self._dropped = 0  # bytes dropped from the buffer since the last chunk went out
        self._last = time.monotonic()
        self._lock = asyncio.Lock()  # the ticker and the final flush must not interleave
        self.full = False
        self.unsent = 0  # bytes never sent because the stored log was full

    def add(self, text: str) -> None:
        """Queue output to send; once the log is full it is only counted."""
        if self.full:
            self.unsent += len(text.encode())
            return
        self._buffer += text
        excess = len(self._buffer) - MAX_PENDING_CHARS
        if excess > 0:
            self._dropped += len(self._buffer[:excess].encode())
            self._buffer = self._buffer[excess:]

    def mark_full(self, rejected: str) -> None:
        """The bot refused ``rejected``: its log is full; stop sending and count the rest."""
        self.full = True
        self.unsent += len(rejected.encode()) + len(self._buffer.encode())
        self._buffer = ""

    def due(self) -> bool:
        return len(self._buffer) >= CHUNK_CHARS or (
            bool(self._buffer) and time.monotonic() - self._last >= FLUSH_SECONDS
        )

    async def flush(self, *, final: bool = False) -> None:
        async with self._lock:
            await self._flush(final)

    async def _flush(self, final: bool) -> None:
        if self._dropped and self._buffer:
            marker = f"[… {self._dropped} bytes dropped: output came faster than it was sent]\n"
            self._buffer, self._dropped = marker + self._buffer, 0
        while self._buffer and not self.full:
            cut = len(self._buffer)
            if cut > CHUNK_CHARS:
                newline = self._buffer.rfind("\n", 0, CHUNK_CHARS)
                cut = newline + 1 if newline > 0 else CHUNK_CHARS
            elif not final:
                newline = self._buffer.rfind("\n")
                if newline < 0 and cut < CHUNK_CHARS:
                    return  # a partial line waits for its end (or the final flush)
                cut = newline + 1 if newline >= 0 else cut
            piece, self._buffer = self._buffer[:cut], self._buffer[cut:]
            self._last = time.monotonic()
            await self._send(self._redactor.redact(piece))


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the whole process group a job's command leads."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - the job's limit, enforced by killing the group
    cancelled: asyncio.Event,
    log: LogStream,
    on_start: Callable[[], Awaitable[None]],
    on_kill: Callable[[], Awaitable[None]] | None = None,
) -> Outcome:
    """Run ``argv`` as the leader of a new process group; stream its output to ``log``;
    on timeout or cancellation terminate the group, then kill it after a short grace."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own session and process group: killed as one
    )
    await on_start()
    assert process.stdout is not None
    stdout = process.stdout

    async def pump() -> None:
        while True:
            data = await stdout.read(READ_BYTES)
            if not data:
                return
            log.add(data.decode(errors="replace"))

    finished = asyncio.Event()

    async def tick() -> None:
        # Ends at its next wake-up after ``finished``: never cancelled mid-send.
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), FLUSH_SECONDS / 2)
            if log.due():
                await log.flush()

    pumping = asyncio.create_task(pump())
    ticking = asyncio.create_task(tick())
    waiting = asyncio.create_task(process.wait())
    stop = asyncio.create_task(cancelled.wait())
    timed_out = was_cancelled = False
    try:
        done, _ = await asyncio.wait(
            {waiting, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if waiting not in done:
            timed_out, was_cancelled = stop not in done, stop in done
            await _stop(process, on_kill)
        await waiting
        # Output still buffered in the pipe; a grandchild holding it open is dead by now.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pumping), KILL_GRACE_SECONDS)
    finally:
        for task in (pumping, stop):
            task.cancel()
        finished.set()
        await ticking
        kill_group(process.pid)  # anything the command left running in its group
    await log.flush(final=True)
    exit_code = None if (timed_out or was_cancelled) else process.returncode
    return Outcome(exit_code, timed_out, was_cancelled, time.monotonic() - started)


async def _stop(
    process: asyncio.subprocess.Process, on_kill: Callable[[], Awaitable[None]] | None
) -> None:
    kill_group(process.pid, signal.SIGTERM)
    if on_kill is not None:
        await on_kill()
    try:
        await asyncio.wait_for(process.wait(), KILL_GRACE_SECONDS)
    except TimeoutError:
        kill_group(process.pid, signal.SIGKILL)
