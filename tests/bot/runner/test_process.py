"""The node's process handling: bounded masked chunks, group kills, locked-down containers."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from bot.analysis.redact import Redactor
from bot.runner.process import (
    CHUNK_CHARS,
    MAX_PENDING_CHARS,
    Limits,
    LogStream,
    docker_command,
    run_command,
)


async def test_chunks_are_bounded_line_aligned_and_masked() -> None:
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    secret = "hunter2-hunter2-hunter2"
    stream = LogStream(send, Redactor([secret]))
    stream.add("partial " + secret[:8])
    await stream.flush()
    assert sent == []  # an unfinished line waits: half a secret would escape the mask
    stream.add(secret[8:] + "\n" + "y" * (CHUNK_CHARS * 2) + "\nend")
    await stream.flush(final=True)
    assert all(len(chunk) <= CHUNK_CHARS for chunk in sent)
    joined = "".join(sent)
    assert secret not in joined
    assert joined.startswith("partial [REDACTED]\n")
    assert joined.endswith("\nend")


async def test_once_the_stored_log_is_full_nothing_more_is_sent_only_counted() -> None:
    sent: list[str] = []

    async def send(text: str) -> None:
        if sent:  # the bot stored one chunk, then answers accepted: false
            stream.mark_full(text)
            return
        sent.append(text)

    stream = LogStream(send, Redactor([]))
    stream.add("a" * CHUNK_CHARS + "b" * 10 + "\n")
    await stream.flush(final=True)
    assert stream.full
    assert sent == ["a" * CHUNK_CHARS]
    stream.add("more output\n")  # the pipe is still drained; the bytes are counted
    await stream.flush(final=True)
    assert sent == ["a" * CHUNK_CHARS]
    assert stream.unsent == 11 + len("more output\n")


async def test_the_pending_buffer_is_bounded_dropping_the_oldest_counted() -> None:
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    stream = LogStream(send, Redactor([]))
    for _ in range(3):  # the bot answers slower than the command writes
        stream.add("o" * MAX_PENDING_CHARS)
    stream.add("newest\n")
    await stream.flush(final=True)
    joined = "".join(sent)
    assert joined.startswith(
        f"[… {2 * MAX_PENDING_CHARS + 7} bytes dropped: output came faster than it was sent]\n"
    )
    assert joined.endswith("o" * 10 + "newest\n")
    assert len(joined) < MAX_PENDING_CHARS + 100


async def test_cancelling_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    cancelled = asyncio.Event()
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    async def on_start() -> None:
        return None

    async def cancel_soon() -> None:
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.02)
        cancelled.set()

    canceller = asyncio.create_task(cancel_soon())
    outcome = await run_command(
        ["/bin/sh", "-c", f"echo started; sleep 300 & echo $! > {pid_file}; wait"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        timeout=60,
        cancelled=cancelled,
        log=LogStream(send, Redactor()),
        on_start=on_start,
    )
    await canceller
    assert outcome.cancelled
    assert outcome.exit_code is None
    assert outcome.duration < 10
    child = int(pid_file.read_text())
    stat = Path(f"/proc/{child}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    assert "started\n" in "".join(sent)


def test_containers_run_unprivileged_with_limits_and_secrets_by_name(tmp_path: Path) -> None:
    argv = docker_command(
        image="python:3.12-slim",
        command="pytest",
        checkout=tmp_path,
        workdir="services/api",
        env_names=["DEPLOY_TOKEN"],
        name="aac-job-1",
        limits=Limits(cpus="1.5", memory="2g"),
    )
    for flag in ("--cap-drop=ALL", "--security-opt=no-new-privileges", "--cpus=1.5",
                 "--memory=2g", "--rm"):  # fmt: skip
        assert flag in argv
    assert argv[argv.index("-e") + 1] == "DEPLOY_TOKEN"  # the value stays in the environment
    assert argv[argv.index("-w") + 1] == "/workspace/services/api"
    assert argv[-4:] == ["python:3.12-slim", "/bin/sh", "-c", "pytest"]
    assert "--privileged" not in argv
