"""Uploads are bounded while they stream: through a real server (uvicorn on 127.0.0.1), with
chunked bodies that declare no length, the upload stops at the limit with a 413 and stores
nothing."""

from __future__ import annotations

import asyncio
import gzip
import json
import select
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from sqlalchemy import func
from sqlalchemy import select as sql_select

from bot.app import create_app
from bot.runtime import Runtime
from storage import apikeys, orgs
from storage.models import CycleUpload, TestCycle, TestResultRow
from tests.bot.api.test_cycles_api import CONTEXT

REQUEST_LIMIT = 64 * 1024
FILE_LIMIT = 48 * 1024
EXPANDED_LIMIT = 256 * 1024
CHUNK = 16 * 1024
ENDLESS = 64 * 1024 * 1024  # what the client would send if nobody stopped it


@dataclass
class Served:
    port: int
    key: str
    runtime: Runtime

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[Served]:
    runtime.settings = runtime.settings.model_copy(
        update={
            "max_upload_bytes": REQUEST_LIMIT,
            "max_result_file_bytes": FILE_LIMIT,
            "max_expanded_result_bytes": EXPANDED_LIMIT,
        }
    )
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        _, key = await apikeys.create_api_key(session, org, "ci")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(runtime)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    yield Served(port, key, runtime)
    server.should_exit = True
    await asyncio.wait_for(task, 30)


async def _new_cycle(served: Served) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"http://127.0.0.1:{served.port}/api/v1/cycles", json=CONTEXT, headers=served.auth()
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _junk(total: int) -> Iterator[bytes]:
    """XML-looking bytes forever (well, ``total``), CHUNK at a time."""
    yield b"<testsuite>"
    sent = 11
    while sent < total:
        piece = b"<testcase name='t'/>" * (CHUNK // 20)
        sent += len(piece)
        yield piece


def _chunked_post(port: int, path: str, headers: dict[str, str], body: Iterator[bytes]) -> Any:
    """POST ``body`` with Transfer-Encoding: chunked (no Content-Length), stopping as soon as
    the server answers; (status, JSON body, body bytes the client got to send)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Transfer-Encoding: chunked"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    received = b""
    sent = 0
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for chunk in body:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the body ended
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
        else:
            sock.sendall(b"0\r\n\r\n")
        while b"\r\n\r\n" not in received or not _complete(received):
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
    finally:
        sock.close()
    head, _, payload = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(payload[: _length(head)]), sent


def _length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise AssertionError(f"no Content-Length in {head!r}")


def _complete(received: bytes) -> bool:
    head, _, payload = received.partition(b"\r\n\r\n")
    return len(payload) >= _length(head)


async def _nothing_stored(served: Served, cycle_id: str) -> None:
    async with served.runtime.sessions() as session:
        for model in (TestResultRow, CycleUpload):
            count = (await session.execute(sql_select(func.count()).select_from(model))).scalar()
            assert count == 0, model.__name__
        cycle = await session.get(TestCycle, cycle_id)
        assert cycle is not None
        assert cycle.total == 0
        assert cycle.files == []


async def _refused_upload(
    served: Served, cycle_id: str, headers: dict[str, str], body: Iterator[bytes]
) -> tuple[str, int]:
    """Stream ``body`` chunked to the cycle's upload URL; the 413's detail and bytes sent,
    once it is checked that nothing was stored."""
    status, answer, sent = await anyio.to_thread.run_sync(
        _chunked_post,
        served.port,
        f"/api/v1/cycles/{cycle_id}/results",
        {**served.auth(), **headers},
        body,
    )
    assert status == 413
    assert answer["error"] == "too_large"
    await _nothing_stored(served, cycle_id)
    return str(answer["detail"]), int(sent)


async def test_a_chunked_raw_body_is_stopped_at_the_limit(served: Served) -> None:
    cycle_id = await _new_cycle(served)
    detail, sent = await _refused_upload(
        served,
        cycle_id,
        {"Content-Type": "application/xml", "X-Filename": "big.xml"},
        _junk(ENDLESS),
    )
    assert "-byte limit" in detail
    # Stopped near the limit, not after reading the whole body (socket buffers hold a few MB).
    assert sent < 16 * 1024 * 1024


async def test_a_chunked_multipart_body_is_stopped_at_the_limit(served: Served) -> None:
    cycle_id = await _new_cycle(served)
    boundary = uuid.uuid4().hex

    def multipart() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.xml"\r\nContent-Type: application/xml\r\n\r\n'
        ).encode()
        yield from _junk(ENDLESS)

    detail, sent = await _refused_upload(
        served,
        cycle_id,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        multipart(),
    )
    assert "AAC_MAX_UPLOAD_BYTES" in detail
    assert sent < 16 * 1024 * 1024


async def test_a_gzip_body_is_bounded_by_its_expanded_size(served: Served) -> None:
    cycle_id = await _new_cycle(served)
    bomb = gzip.compress(b"<testsuite>" + b" " * (EXPANDED_LIMIT * 8) + b"</testsuite>")
    assert len(bomb) < FILE_LIMIT  # small on the wire
    detail, _sent = await _refused_upload(
        served,
        cycle_id,
        {"Content-Encoding": "gzip", "X-Filename": "bomb.xml.gz"},
        iter([bomb[i : i + CHUNK] for i in range(0, len(bomb), CHUNK)]),
    )
    assert "expands" in detail
    assert "bomb.xml.gz" in detail


async def test_a_multipart_part_over_the_file_limit_is_refused(served: Served) -> None:
    cycle_id = await _new_cycle(served)
    big = b"<testsuite>" + b" " * FILE_LIMIT + b"</testsuite>"
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"http://127.0.0.1:{served.port}/api/v1/cycles/{cycle_id}/results",
            files=[("file", ("small.xml", b"<testsuite/>")), ("file", ("big.xml", big))],
            headers=served.auth(),
        )
    assert response.status_code == 413
    assert response.json()["file"] == "big.xml"
    await _nothing_stored(served, cycle_id)
