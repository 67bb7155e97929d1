"""``/api/v1/cycles``: create a test cycle, upload results, complete it, read it back."""

from __future__ import annotations

from typing import Any

import anyio
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot import cycles
from bot.api.auth import require_api_key
from bot.api.errors import ApiError
from bot.api.schemas import CycleComplete, CycleCreate, ManualCycleCreate, parse_body
from bot.api.uploads import Upload, UploadLimits, read_uploads
from bot.cycle_uploads import store_upload
from bot.handlers.context import HandlerContext
from bot.manual_runs import ManualRunRefused
from bot.manual_start import ManualStart, start_manual
from bot.results.errors import ResultFileError
from bot.results.limits import ParseLimits
from bot.results.parse import parse_results
from bot.results.parsed import ParsedFile
from bot.runtime import Runtime
from providers.registry import package_for
from storage.models import Organization, TestCycle


async def default_host(session: AsyncSession, org_id: int, source: str) -> str:
    """The SCM host a CI-created cycle is keyed by when the caller names none: where the
    organisation's credentials for that SCM point, so a cycle an SCM event opened for the same
    commit is found and filled. "" for sources that publish nowhere."""
    package = package_for(source)
    if package is None:
        return ""
    org = await session.get_one(Organization, org_id)
    return await package.host_for_org(session, org)


STORE_ATTEMPTS = 5


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _not_found(cycle_id: str) -> ApiError:
    # Same answer for "absent" and "another organisation's": no cross-tenant hints.
    return ApiError(404, "cycle_not_found", f"no cycle {cycle_id} in this organisation")


def _json(cycle: TestCycle, runtime: Runtime, status: int = 200) -> JSONResponse:
    body = cycles.cycle_json(cycle, runtime.settings.public_url, runtime.vault.keyring)
    return JSONResponse(body, status_code=status)


async def create_cycle(request: Request) -> JSONResponse:
    runtime = _runtime(request)
    body = parse_body(CycleCreate, await request.body())
    idem = request.headers.get("idempotency-key")
    if idem is not None and not 1 <= len(idem) <= 200:
        raise ApiError(422, "invalid_header", "Idempotency-Key must be 1-200 characters")
    async with runtime.sessions.begin() as session:
        key = await require_api_key(request, session, scope="report")
        ctx = body.to_context()
        if not ctx.host:
            ctx.host = await default_host(session, key.org_id, ctx.source)
        cycle, created = await cycles.create_cycle(session, key.org_id, ctx, idempotency_key=idem)
    return _json(cycle, runtime, 201 if created else 200)


async def start_manual_cycle(request: Request) -> JSONResponse:
    """Start a suite with the ``manual`` trigger at a commit, as ``/aac run SUITE`` does on a
    change: 201 with the new cycle, 200 with the one still running, 4xx saying why not."""
    runtime = _runtime(request)
    body = parse_body(ManualCycleCreate, await request.body())
    async with runtime.sessions.begin() as session:
        # Its own scope: a report key sits in every CI job beside the code under test.
        key = await require_api_key(request, session, scope="run")
        host = body.host.lower() or await default_host(session, key.org_id, body.source)
        org = await session.get_one(Organization, key.org_id)
    start = ManualStart(body.source, host, body.repository, body.sha.lower(), body.suite)
    hctx = HandlerContext(runtime, request.app.state.provider_shared)
    try:
        cycle, created = await start_manual(hctx, org, start)
    except ManualRunRefused as refused:
        wait = refused.retry_after
        headers = {"Retry-After": str(wait)} if wait is not None else None
        raise ApiError(refused.status, refused.code, refused.message, headers=headers) from None
    wake = getattr(request.app.state, "wake_worker", None)
    if wake is not None:
        wake()
    return _json(cycle, runtime, 201 if created else 200)


async def list_cycles(request: Request) -> JSONResponse:
    runtime = _runtime(request)
    params = request.query_params
    pr = params.get("pr")
    if pr is not None and not pr.isdigit():
        raise ApiError(422, "invalid_query", "pr must be a number")
    limit = params.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= 500:
        raise ApiError(422, "invalid_query", "limit must be a number from 1 to 500")
    async with runtime.sessions.begin() as session:
        key = await require_api_key(request, session, scope="read")
        found = await cycles.list_cycles(
            session,
            key.org_id,
            repository=params.get("repository"),
            pr=int(pr) if pr is not None else None,
            sha=params.get("sha"),
            limit=int(limit),
        )
    url, keyring = runtime.settings.public_url, runtime.vault.keyring
    return JSONResponse({"cycles": [cycles.cycle_json(c, url, keyring) for c in found]})


async def get_cycle(request: Request) -> JSONResponse:
    runtime = _runtime(request)
    cycle_id = request.path_params["cycle_id"]
    async with runtime.sessions.begin() as session:
        # Either scope: `aac report --wait` polls the cycle it created with a report key.
        key = await require_api_key(request, session, scope=None)
        cycle = await cycles.get_cycle(session, key.org_id, cycle_id)
        if cycle is None:
            raise _not_found(cycle_id)
    return _json(cycle, runtime)


async def upload_results(request: Request) -> JSONResponse:
    runtime = _runtime(request)
    async with runtime.sessions.begin() as session:
        key = await require_api_key(request, session, scope="report")
    return JSONResponse(
        await store_uploaded_results(request, runtime, key.org_id, request.path_params["cycle_id"])
    )


async def store_uploaded_results(
    request: Request, runtime: Runtime, org_id: int, cycle_id: str
) -> dict[str, Any]:
    """Read, parse and store the result files of a request for one of ``org_id``'s cycles;
    the one upload path for CI (`aac report`) and testing nodes alike."""
    settings = runtime.settings
    async with runtime.sessions.begin() as session:
        cycle = await cycles.get_cycle(session, org_id, cycle_id)
        if cycle is None:
            raise _not_found(cycle_id)
        _collecting(cycle)
    limits = UploadLimits(
        file_bytes=settings.max_result_file_bytes,
        expanded_bytes=settings.max_expanded_result_bytes,
        request_bytes=settings.max_upload_bytes,
    )
    uploads = await read_uploads(request, limits)
    try:
        # Parse everything before storing anything: a bad file rejects the whole request.
        parse_limits = ParseLimits(
            max_file_bytes=limits.file_bytes, max_decompressed_bytes=limits.expanded_bytes
        )
        parsed = [
            (upload, await anyio.to_thread.run_sync(_parse, upload, parse_limits))
            for upload in uploads
        ]
    finally:
        for upload in uploads:
            upload.file.close()
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            return await _store(runtime, org_id, cycle_id, parsed)
        except IntegrityError:
            # The same file's first upload raced this one in; now it is there to replace.
            if attempt == STORE_ATTEMPTS:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _store(
    runtime: Runtime, org_id: int, cycle_id: str, parsed: list[tuple[Upload, ParsedFile]]
) -> dict[str, Any]:
    """Store parsed uploads in one transaction; the upload's JSON answer."""
    stored: list[dict[str, Any]] = []
    async with runtime.sessions.begin() as session:
        # Locked: two uploads to one cycle (or a repeat racing its original) run one by one.
        cycle = await session.get(TestCycle, cycle_id, with_for_update=True, populate_existing=True)
        if cycle is None or cycle.org_id != org_id:
            raise _not_found(cycle_id)
        _collecting(cycle)
        for upload, result in parsed:
            item = await store_upload(
                session, cycle, result, content_sha256=upload.sha256, idempotency_key=upload.key
            )
            entry: dict[str, Any] = {
                "name": item.name,
                "format": item.format,
                "tests": item.tests,
                "replaced": item.replaced,
            }
            if result.counted:  # tests the file gave as suite totals only, without names
                entry["counted_from_attributes"] = result.counted
            stored.append(entry)
        return {"files": stored, "totals": cycles.totals(cycle), "cycle": cycle.id}


def _parse(upload: Upload, limits: ParseLimits) -> ParsedFile:
    try:
        return parse_results(upload.file, filename=upload.name, limits=limits)
    except ResultFileError as exc:
        status = 413 if exc.code == "too_large" else 422
        raise ApiError(
            status, exc.code, exc.reason, file=exc.filename, line=exc.line, column=exc.column
        ) from None


def _collecting(cycle: TestCycle) -> None:
    try:
        cycles.ensure_collecting(cycle)
    except cycles.CycleError as exc:
        raise ApiError(409, "cycle_closed", str(exc)) from None


async def complete_cycle(request: Request) -> JSONResponse:
    runtime = _runtime(request)
    cycle_id = request.path_params["cycle_id"]
    body = parse_body(CycleComplete, await request.body())
    async with runtime.sessions.begin() as session:
        key = await require_api_key(request, session, scope="report")
        cycle = await cycles.get_cycle(session, key.org_id, cycle_id)
        if cycle is None:
            raise _not_found(cycle_id)
        _collecting(cycle)
        await cycles.complete_cycle(
            session,
            cycle,
            outcome=body.outcome,
            exit_code=body.exit_code,
            timeout_seconds=body.timeout_seconds,
        )
    wake = getattr(request.app.state, "wake_worker", None)
    if wake is not None:
        wake()
    return _json(cycle, runtime, 202)


ROUTES = [
    Route("/api/v1/cycles", create_cycle, methods=["POST"]),
    Route("/api/v1/cycles", list_cycles, methods=["GET"]),
    Route("/api/v1/cycles/manual", start_manual_cycle, methods=["POST"]),
    Route("/api/v1/cycles/{cycle_id}", get_cycle, methods=["GET"]),
    Route("/api/v1/cycles/{cycle_id}/results", upload_results, methods=["POST"]),
    Route("/api/v1/cycles/{cycle_id}/complete", complete_cycle, methods=["POST"]),
]
