"""Logs as ``aac serve`` and ``aac worker`` write them off a terminal: one JSON object per line,
tagged with the request id (HTTP) or the job id (worker). The real app and worker run
in-process; logging is configured exactly as bot/asgi.py and bot/cli.py do, into a captured
stream that is not a terminal."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.jobs import job_handlers
from bot.log import configure_logging
from bot.runtime import Runtime, build_runtime
from bot.webhooks.intake import WEBHOOK_JOB
from bot.worker import Worker, WorkerConfig
from config.settings import Settings, load_settings
from storage import queue
from storage.delivery_body import encode_body
from storage.models import Job, WebhookDelivery
from tests.conftest import TEST_KEYS


class Captured(io.StringIO):
    """What the process would write to stderr when it is a pipe or a file."""

    def lines(self) -> list[dict[str, Any]]:
        raw = [line for line in self.getvalue().splitlines() if line.strip()]
        # Every line is one JSON object: a line that does not parse fails the test here.
        return [json.loads(line) for line in raw]


@pytest.fixture
def log_stream() -> Iterator[Captured]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = Captured()
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def configure_like_the_service(settings: Settings, stream: Captured) -> None:
    """bot/asgi.py and bot/cli.py: ``configure_logging(log_level, log_format)``, whose default
    stream is stderr; only the stream differs here."""
    assert settings.log_format == "auto"
    configure_logging(settings.log_level, settings.log_format, stream=stream)


def test_the_captured_stream_is_not_a_terminal_so_auto_means_json() -> None:
    stream = Captured()
    assert not stream.isatty()


async def test_http_request_logs_carry_the_request_id(
    runtime: Runtime, log_stream: Captured
) -> None:
    configure_like_the_service(runtime.settings, log_stream)
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        forged = await client.post(
            "/webhooks/github",
            content=b"{}",
            headers={
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "d-1",
                "X-Hub-Signature-256": "sha256=" + "0" * 64,
                "X-Request-Id": "req42abc",
            },
        )
    await app.state.delivery_writer.close()
    assert forged.status_code == 401
    assert forged.headers["x-request-id"] == "req42abc"
    rejected = [e for e in log_stream.lines() if e["message"] == "webhooks rejected"]
    assert len(rejected) == 1
    entry = rejected[0]
    assert entry["request_id"] == "req42abc"
    assert entry["level"] == "warning"
    assert entry["logger"] == "aac.webhooks"
    assert "job_id" not in entry


@pytest.fixture
async def broken_runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime whose database cannot be opened, so an API call fails unexpectedly."""
    settings = load_settings(
        {
            "AAC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/no-such-dir/aac.db",
            "AAC_SECRET_KEYS": TEST_KEYS,
        }
    )
    runtime = build_runtime(settings)
    yield runtime
    await runtime.close()


async def test_an_unexpected_error_is_logged_with_the_request_id_the_caller_saw(
    broken_runtime: Runtime, log_stream: Captured
) -> None:
    """The 500 answer says "the server log has the request id": it must, and the answer must
    carry the same id so an operator can find the line."""
    configure_like_the_service(broken_runtime.settings, log_stream)
    app = create_app(broken_runtime)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        failed = await client.get(
            "/api/v1/cycles",
            headers={"Authorization": "Bearer aac_000000000000_x", "X-Request-Id": "trace7"},
        )
    await app.state.delivery_writer.close()
    assert failed.status_code == 500
    assert failed.json()["error"] == "internal"
    assert failed.headers.get("x-request-id") == "trace7"
    errors = [e for e in log_stream.lines() if e["message"] == "unhandled error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "trace7"
    assert errors[0]["level"] == "error"
    # The exception's class only: SDK and driver messages may echo request data.
    assert errors[0]["exception"] == "OperationalError"


async def _queue_jobs(runtime: Runtime) -> tuple[int, int]:
    """A webhook job the worker runs (an event it ignores) and one of a kind it has no
    handler for (it goes dead at once)."""
    async with runtime.sessions.begin() as session:
        delivery = WebhookDelivery(
            provider="github",
            delivery_id="d-77",
            event="star",
            body=encode_body(json.dumps({"action": "created"}).encode()),
        )
        session.add(delivery)
        await session.flush()
        handled = await queue.enqueue(session, WEBHOOK_JOB, {"delivery": delivery.id})
        unknown = await queue.enqueue(session, "no_such_kind", {}, max_attempts=1)
    return handled, unknown


async def _run_worker_until_settled(runtime: Runtime, job_ids: set[int]) -> None:
    worker = Worker(
        runtime.sessions, job_handlers(runtime), WorkerConfig(concurrency=2, poll_interval=0.05)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(30):
            while True:
                async with runtime.sessions() as session:
                    statuses = (
                        await session.execute(select(Job.status).where(Job.id.in_(job_ids)))
                    ).scalars()
                    if set(statuses) <= {"done", "dead"}:
                        break
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


async def test_worker_logs_carry_the_job_id(runtime: Runtime, log_stream: Captured) -> None:
    configure_like_the_service(runtime.settings, log_stream)
    handled, unknown = await _queue_jobs(runtime)
    await _run_worker_until_settled(runtime, {handled, unknown})
    entries = log_stream.lines()
    webhook = [e for e in entries if e["message"] == "webhook"]
    assert len(webhook) == 1
    assert webhook[0]["job_id"] == handled
    assert webhook[0]["event"] == "star"
    assert webhook[0]["logger"] == "aac.handlers"
    dead = [e for e in entries if e["message"] == "job failed permanently"]
    assert len(dead) == 1
    assert dead[0]["job_id"] == unknown
    assert dead[0]["kind"] == "no_such_kind"
    for entry in entries:
        assert "request_id" not in entry
        assert {"time", "level", "logger", "message"} <= set(entry)


def test_on_a_terminal_lines_are_text_with_the_same_ids() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = Terminal()
    try:
        configure_logging("INFO", "auto", stream=stream)
        from bot.log import job_id_var

        token = job_id_var.set(12)
        try:
            logging.getLogger("aac.test").info("hello", extra={"kind": "x"})
        finally:
            job_id_var.reset(token)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = stream.getvalue().strip()
    assert not line.startswith("{")
    assert line.startswith("info    aac.test: hello")
    assert "job_id=12" in line
    assert "kind=x" in line
