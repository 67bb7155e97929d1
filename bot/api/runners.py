"""``/api/v1/runners/...``: the testing nodes' API, authenticated by runner token.

A node registers once (registration token -> runner token), then loops: long-poll for a job,
fetch its credential, report the command's start, stream log chunks (each answer says whether
the job was cancelled), upload result files, report the exit code.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import runner_jobs
from bot.analysis.redact import Redactor
from bot.api.cycles import store_uploaded_results
from bot.api.errors import ApiError
from bot.api.schemas import parse_body
from bot.runner_credentials import CredentialUnavailable, mint_job_credential
from bot.runtime import Runtime
from providers.base import ProviderError
from storage import runners
from storage.models import Organization, Runner, RunnerJob, TestCycle
from storage.runners import JobState, RunnerError
from storage.types import utcnow

PREFIX = "/api/v1/runners"
# How often a waiting poll looks for work: the dispatch latency a node sees at worst.
POLL_INTERVAL = 0.025
# Vanished nodes are looked for at most this often per process.
EXPIRE_INTERVAL = 1.0
MAX_CHUNK_CHARS = 64 * 1024


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    labels: list[str] = Field(default_factory=list, max_length=50)


class PollBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[str] | None = Field(default=None, max_length=50)


class LogBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=0, le=10_000_000)
    text: str = Field(max_length=MAX_CHUNK_CHARS)


class FinishBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exit_code: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = Field(default=None, max_length=4000)


def _job_id(request: Request) -> int:
    raw = str(request.path_params["job_id"])
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "job_not_found", f"no job {raw[:40]!r}")
    return int(raw)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _bearer(request: Request, what: str) -> str:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(
            401,
            "unauthorized",
            f"send a {what} as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return presented.strip()


async def _runner(request: Request, session: AsyncSession) -> Runner:
    runner = await runners.authenticate_runner(session, _bearer(request, "runner token"))
    if runner is None:
        raise ApiError(
            401,
            "unauthorized",
            "the runner token is not valid or was revoked; register the node again "
            "(`aac runner register --org ORG` gives a registration token)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return runner


async def _held(request: Request, session: AsyncSession) -> RunnerJob:
    """The job of the path, if the authenticated runner holds it now."""
    runner = await _runner(request, session)
    job_id = _job_id(request)
    job = await runners.held_job(session, runner, job_id)
    if job is None:
        # Lost its lease (re-queued to another node), finished, or never this node's.
        raise ApiError(409, "job_not_held", f"job {job_id} is not held by this runner any more")
    return job


async def register(request: Request) -> JSONResponse:
    runtime = _runtime(request)
    body = parse_body(RegisterBody, await request.body())
    token = _bearer(request, "registration token")
    async with runtime.sessions.begin() as session:
        try:
            registered = await runners.register_runner(session, token, body.name, body.labels)
        except RunnerError as exc:
            raise ApiError(422, "invalid_runner", str(exc)) from None
        if registered is None:
            raise ApiError(
                401,
                "unauthorized",
                "the registration token is not valid or was revoked; "
                "create one with `aac runner register --org ORG`",
            )
        runner, full = registered
    return JSONResponse(
        {"runner": {"id": runner.id, "name": runner.name, "labels": runner.labels}, "token": full},
        status_code=201,
    )


class _Expiry:
    """Looks for vanished nodes at most once per interval in this process."""

    def __init__(self) -> None:
        self.last = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < EXPIRE_INTERVAL:
            return False
        self.last = now
        return True


_expiry = _Expiry()


async def next_job(request: Request) -> Response:
    """Long-poll: a job for this node, or 204 when none came within ``wait`` seconds."""
    runtime = _runtime(request)
    settings = runtime.settings
    raw_wait = request.query_params.get("wait", str(settings.runner_poll_seconds))
    try:
        wait = min(max(float(raw_wait), 0.0), settings.runner_poll_seconds)
    except ValueError:
        raise ApiError(422, "invalid_query", "wait must be a number of seconds") from None
    raw = await request.body()
    body = parse_body(PollBody, raw) if raw else PollBody()
    async with runtime.sessions.begin() as session:
        runner = await _runner(request, session)
        if body.labels is not None and sorted(set(body.labels)) != runner.labels:
            runner.labels = sorted(set(body.labels))  # e.g. Docker came or went
    deadline = time.monotonic() + wait
    while True:
        if _expiry.due():
            async with runtime.sessions.begin() as session:
                await runner_jobs.expire_vanished(session)
        async with runtime.sessions() as session:
            waiting = await runners.has_queued_job(session, runner.org_id)
        if waiting:
            async with runtime.sessions.begin() as session:
                job = await runners.claim_job(
                    session, runner, lease_seconds=settings.runner_lease_seconds
                )
                if job is not None:
                    return JSONResponse(_job_json(job, settings.runner_lease_seconds))
        if time.monotonic() >= deadline or await request.is_disconnected():
            return Response(status_code=204)
        await asyncio.sleep(POLL_INTERVAL)


def _job_json(job: RunnerJob, lease_seconds: float) -> dict[str, Any]:
    spec = job.spec
    return {
        "id": job.id,
        "cycle_id": job.cycle_id,
        "attempt": job.attempts,
        "suite": job.suite,
        "repository": job.repository,
        "sha": job.sha,
        "clone_url": spec.get("clone_url"),
        "command": spec.get("command"),
        "image": spec.get("image"),
        "workdir": spec.get("workdir", "."),
        "env": spec.get("env", {}),
        "secret_env": sorted(spec.get("secrets", {})),
        "timeout": spec.get("timeout"),
        "results": spec.get("results"),
        "lease_seconds": lease_seconds,
    }


async def credential(request: Request) -> JSONResponse:
    """The job's short-lived git credential and secret values: only to the node holding it."""
    runtime = _runtime(request)
    async with runtime.sessions.begin() as session:
        job = await _held(request, session)
        org = await session.get(Organization, job.org_id)
        cycle = await session.get(TestCycle, job.cycle_id)
        assert org is not None
        assert cycle is not None
        try:
            secrets = await runners.load_secrets(
                session, runtime.vault, org.id, job.spec.get("secrets", {}).values()
            )
            git = await mint_job_credential(session, runtime.vault, org, cycle)
        except (RunnerError, CredentialUnavailable) as exc:
            raise ApiError(424, "credential_unavailable", str(exc)) from None
        except ProviderError as exc:
            raise ApiError(
                502, "credential_unavailable", f"could not mint a token: {exc}"
            ) from None
    env = {var: secrets[name].reveal() for var, name in job.spec.get("secrets", {}).items()}
    body: dict[str, Any] = {"secret_env": env, "git": None}
    if git is not None:
        body["git"] = {
            "username": git.username,
            "password": git.password,
            "expires_at": git.expires_at.isoformat(),
        }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def started(request: Request) -> JSONResponse:
    """The command started (dispatch latency is measured to here)."""
    return await _touch(request, started=True)


async def heartbeat(request: Request) -> JSONResponse:
    """The node still works on the job: the lease is renewed; the answer says if cancelled."""
    return await _touch(request, started=False)


async def _touch(request: Request, *, started: bool) -> JSONResponse:
    runtime = _runtime(request)
    async with runtime.sessions.begin() as session:
        job = await _held(request, session)
        if started and job.command_started_at is None:
            job.command_started_at = utcnow()
        runners.renew_lease(job, lease_seconds=runtime.settings.runner_lease_seconds)
        return JSONResponse({"cancel": job.cancel_requested})


async def append_log(request: Request) -> JSONResponse:
    """One chunk of output, masked with the job's secrets before it is stored."""
    runtime = _runtime(request)
    body = parse_body(LogBody, await request.body())
    async with runtime.sessions.begin() as session:
        job = await _held(request, session)
        # The node masks too; this pass holds even if a node does not.
        try:
            values = await runners.load_secrets(
                session, runtime.vault, job.org_id, job.spec.get("secrets", {}).values()
            )
        except RunnerError:
            values = {}
        masked = Redactor(v.reveal() for v in values.values()).redact(body.text)
        accepted = await runners.append_log(session, job, body.seq, masked)
        runners.renew_lease(job, lease_seconds=runtime.settings.runner_lease_seconds)
        return JSONResponse({"accepted": accepted, "cancel": job.cancel_requested})


async def upload(request: Request) -> JSONResponse:
    """Result files of the job, through the same path as ``aac report`` uploads."""
    runtime = _runtime(request)
    async with runtime.sessions.begin() as session:
        job = await _held(request, session)
        runners.renew_lease(job, lease_seconds=runtime.settings.runner_lease_seconds)
        org_id, cycle_id = job.org_id, job.cycle_id
    return JSONResponse(await store_uploaded_results(request, runtime, org_id, cycle_id))


async def finish(request: Request) -> JSONResponse:
    """The exit code (or timeout, cancellation, failure to run): the cycle closes."""
    runtime = _runtime(request)
    body = parse_body(FinishBody, await request.body())
    async with runtime.sessions.begin() as session:
        job = await _held(request, session)
        await runner_jobs.finish_job(
            session,
            job,
            runner_jobs.Report(
                exit_code=body.exit_code,
                timed_out=body.timed_out,
                cancelled=body.cancelled,
                error=body.error,
            ),
        )
        state = job.state
    wake = getattr(request.app.state, "wake_worker", None)
    if wake is not None and state != JobState.CANCELLED:
        wake()
    return JSONResponse({"state": state})


ROUTES = [
    Route(f"{PREFIX}/register", register, methods=["POST"]),
    Route(f"{PREFIX}/jobs/next", next_job, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/credential", credential, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/started", started, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/heartbeat", heartbeat, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/log", append_log, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/results", upload, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/finish", finish, methods=["POST"]),
]
