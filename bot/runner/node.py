"""A testing node: takes jobs from the bot and runs them, ``concurrency`` at a time.

It never touches the database or the vault: everything comes over the runner API. Per job:
a fresh work directory, a checkout of the exact commit with the job's short-lived credential,
the command in its own process group (or a container), its output streamed in masked chunks,
the result files uploaded, the exit code reported, the directory removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from bot.analysis.redact import Redactor
from bot.runner.checkout import CheckoutError, GitAuth, checkout, init_repository
from bot.runner.client import JobLost, RunnerClient, ServerRefused
from bot.runner.process import (
    Limits,
    LogStream,
    Outcome,
    docker_command,
    run_command,
)

HEARTBEAT_SECONDS = 1.0
MAX_RESULT_FILES = 200
# What a job's command inherits from the node's environment; nothing else (the node's own
# token lives in its environment).
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
# What the bot answers once the node's token is revoked: nothing the node does can be reported
# any more, and a command still running holds the job's secrets.
TOKEN_REFUSED = frozenset({401, 403})


@dataclass(slots=True)
class NodeConfig:
    name: str
    labels: list[str] = field(default_factory=list)
    concurrency: int = 1
    work_dir: Path = Path("aac-runner-work")
    poll_wait: float = 25.0
    docker: bool = False
    limits: Limits = field(default_factory=Limits)
    keep_work_dirs: bool = False


class Node:
    """Runs jobs until ``stop`` is set; prints one line per job taken and finished."""

    def __init__(
        self,
        client: RunnerClient,
        config: NodeConfig,
        *,
        environ: Mapping[str, str],
        out: TextIO = sys.stdout,
    ) -> None:
        self.client = client
        self.config = config
        self.environ = environ
        self.out = out
        self.jobs_done = 0
        self.refused = False  # the bot refused the node's token (revoked): it stopped

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and run jobs in ``concurrency`` slots until ``stop``."""
        self.config.work_dir.mkdir(parents=True, exist_ok=True)
        slots = [
            asyncio.create_task(self._slot(stop)) for _ in range(max(1, self.config.concurrency))
        ]
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([stopping, *slots], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*slots, stopping]:
                task.cancel()
            await asyncio.gather(*slots, stopping, return_exceptions=True)

    async def _slot(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                job = await self.client.next_job(self.config.poll_wait, self.config.labels)
                if job is not None:
                    await self.run_job(job)
            except ServerRefused as exc:
                if exc.status in TOKEN_REFUSED:
                    self.say(
                        f"aac runner: the bot refused this node's token ({exc}): revoked or no "
                        "longer valid; stopping"
                    )
                    self.refused = True
                    stop.set()
                    return
                self.say(f"aac runner: the bot refused a request ({exc}); retrying in 5 s")
                await asyncio.sleep(5)
            except httpx.TransportError as exc:
                self.say(f"aac runner: cannot reach the bot ({exc}); retrying in 5 s")
                await asyncio.sleep(5)

    async def run_job(self, job: dict[str, Any]) -> None:
        """Run one job to its end and report it; never raises for the job's own failures."""
        job_id = int(job["id"])
        started = time.monotonic()
        self.say(
            f"job {job_id} taken: {job['repository']}@{str(job['sha'])[:12]} suite "
            f"{job['suite']} (attempt {job['attempt']})"
        )
        job_dir = self.config.work_dir / f"job-{job_id}-{job['attempt']}-{secrets.token_hex(4)}"
        try:
            outcome, error = await self._execute(job, job_dir)
        except JobLost:
            self.say(f"job {job_id} lost: the bot gave it to another node (lease expired)")
            return
        except ServerRefused as exc:
            if exc.status in TOKEN_REFUSED:
                # The node's token is gone: nothing more can be reported.
                self.say(f"job {job_id} abandoned: the bot refused this node's token; killed")
                raise
            outcome, error = None, f"the bot refused: {exc}"  # e.g. a secret it lacks
        finally:
            if not self.config.keep_work_dirs:
                await asyncio.to_thread(shutil.rmtree, job_dir, True)
        with contextlib.suppress(JobLost):  # a retried finish whose first attempt was recorded
            await self.client.finish(
                job_id,
                exit_code=outcome.exit_code if outcome else None,
                timed_out=bool(outcome and outcome.timed_out),
                cancelled=bool(outcome and outcome.cancelled),
                error=error,
            )
        self.jobs_done += 1
        took = time.monotonic() - started
        if error is not None:
            self.say(f"job {job_id} failed to run after {took:.1f} s: {error}")
        elif outcome is not None and outcome.timed_out:
            self.say(f"job {job_id} timed out after {job['timeout']} s; its processes were killed")
        elif outcome is not None and outcome.cancelled:
            self.say(f"job {job_id} cancelled after {took:.1f} s; its processes were killed")
        elif outcome is not None:
            self.say(f"job {job_id} finished: exit code {outcome.exit_code} in {took:.1f} s")

    async def _execute(
        self, job: dict[str, Any], job_dir: Path
    ) -> tuple[Outcome | None, str | None]:
        job_id = int(job["id"])
        home = job_dir / "home"
        home.mkdir(parents=True)
        repo = job_dir / "repo"
        # The empty repository is made while the bot mints the credential.
        asked = asyncio.create_task(self.client.credential(job_id))
        try:
            await init_repository(repo, base_env=self.environ, home=home)
        except CheckoutError as exc:
            asked.cancel()
            return None, str(exc)
        credential = await asked
        secret_env: dict[str, str] = dict(credential.get("secret_env") or {})
        git = credential.get("git")
        auth = GitAuth(git["username"], git["password"]) if git else None
        redactor = Redactor([*secret_env.values(), *([auth.password] if auth else [])])
        seq = 0
        cancelled = asyncio.Event()

        async def send(text: str) -> None:
            nonlocal seq
            if log.full:
                log.unsent += len(text.encode())
                return
            answer = await self.client.log(job_id, seq, text)
            seq += 1
            if answer.get("cancel"):
                cancelled.set()
            if answer.get("accepted") is False:
                log.mark_full(text)  # the stored log is full: sending more only costs

        log = LogStream(send, redactor)
        try:
            try:
                await checkout(
                    str(job["clone_url"]),
                    str(job["sha"]),
                    repo,
                    auth=auth,
                    base_env=self.environ,
                    home=home,
                    initialised=True,
                )
            except CheckoutError as exc:
                message = redactor.redact(str(exc))
                log.add(f"[aac] checkout failed: {message}\n")
                await log.flush(final=True)
                return None, f"checkout of {str(job['sha'])[:12]} failed: {message}"
            del auth, git  # the credential's work is done; nothing below may see it
            workdir = repo / str(job.get("workdir") or ".")
            if not workdir.is_dir():
                return None, f"the suite's workdir {job.get('workdir')!r} is not in the repository"
            env = self._command_env(job, home, secret_env)
            argv, on_kill = self._argv(job, repo, env)
            heart = asyncio.create_task(self._heartbeat(job_id, cancelled))

            async def on_start() -> None:
                if await self.client.started(job_id):
                    cancelled.set()

            try:
                outcome = await run_command(
                    argv,
                    cwd=workdir,
                    env=env,
                    timeout=float(job["timeout"]),
                    cancelled=cancelled,
                    log=log,
                    on_start=on_start,
                    on_kill=on_kill,
                )
            finally:
                heart.cancel()
                with contextlib.suppress(asyncio.CancelledError, JobLost):
                    await heart
            if outcome.timed_out:
                await send(f"\n[aac] timed out after {job['timeout']} s: process group killed\n")
            if outcome.cancelled:
                await send("\n[aac] cancelled (a newer commit superseded this cycle): killed\n")
                return outcome, None
            problem = await self._upload(job_id, workdir, str(job["results"]))
            if problem is not None:
                await log.flush(final=True)
                await send(f"[aac] results: {problem}\n")
            return outcome, None
        finally:
            if log.unsent:
                self.say(f"job {job_id}: [… {log.unsent} bytes not sent: log full]")

    def _command_env(
        self, job: dict[str, Any], home: Path, secret_env: Mapping[str, str]
    ) -> dict[str, str]:
        env = {k: self.environ[k] for k in PASSED_THROUGH if k in self.environ}
        env.update(
            {
                "HOME": str(home),
                "CI": "true",
                "AAC_CYCLE_ID": str(job["cycle_id"]),
                "AAC_SUITE": str(job["suite"]),
                "AAC_SHA": str(job["sha"]),
            }
        )
        env.update({k: str(v) for k, v in (job.get("env") or {}).items()})
        env.update(secret_env)
        return env

    def _argv(self, job: dict[str, Any], repo: Path, env: dict[str, str]) -> tuple[list[str], Any]:
        image = job.get("image")
        command = str(job["command"])
        if not image:
            return ["/bin/sh", "-c", command], None
        name = f"aac-job-{job['id']}-{job['attempt']}-{secrets.token_hex(3)}"
        argv = docker_command(
            image=str(image),
            command=command,
            checkout=repo,
            workdir=str(job.get("workdir") or "."),
            env_names=sorted(k for k in env if k not in ("PATH", "HOME")),
            name=name,
            limits=self.config.limits,
        )

        async def kill_container() -> None:
            process = await asyncio.create_subprocess_exec(
                "docker",
                "kill",
                name,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await process.wait()

        return argv, kill_container

    async def _heartbeat(self, job_id: int, cancelled: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                if await self.client.heartbeat(job_id):
                    cancelled.set()
            except JobLost:
                cancelled.set()  # not ours any more: stop working on it
                raise
            except ServerRefused as exc:
                if exc.status in TOKEN_REFUSED:
                    # Revoked mid-job: kill the command (and its secrets) now, as a cancel does.
                    cancelled.set()
                    raise
            except httpx.TransportError:
                continue  # the lease outlasts a few missed beats

    async def _upload(self, job_id: int, workdir: Path, pattern: str) -> str | None:
        """Upload the result files; the problem to log when there are none or the bot refused."""
        files = (await asyncio.to_thread(_matching, workdir, pattern))[:MAX_RESULT_FILES]
        if not files:
            self.say(f"job {job_id}: no result files match {pattern!r}")
            return f"no result files match {pattern!r}"
        size = sum(p.stat().st_size for p in files)
        self.say(f"job {job_id}: uploading {len(files)} result file(s), {size / 1024:.1f} KiB ...")
        try:
            body = await self.client.upload(job_id, files, workdir)
        except JobLost:
            raise
        except ServerRefused as exc:
            # The exit code still counts; the cycle shows what the bot refused and why.
            self.say(f"job {job_id}: the bot refused the result files: {exc}")
            return str(exc)
        totals = body.get("totals") or {}
        self.say(
            f"job {job_id}: uploaded {len(files)} file(s): {totals.get('total', 0)} tests, "
            f"{totals.get('failed', 0)} failed"
        )
        return None


def default_name() -> str:
    """The node's name when none is given: the host's, which `aac runner list` shows."""
    return (os.uname().nodename or "runner").split(".")[0][:100] or "runner"


def _matching(workdir: Path, pattern: str) -> list[Path]:
    return sorted(p for p in workdir.glob(pattern) if p.is_file())
