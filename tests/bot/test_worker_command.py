"""``aac worker`` as an operator runs it: a separate process that picks up queued jobs, logs
JSON with the job id when its stderr is not a terminal, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.runtime import build_runtime
from bot.webhooks.intake import WEBHOOK_JOB
from config.settings import load_settings
from storage import queue
from storage.delivery_body import encode_body
from storage.models import Job, WebhookDelivery
from tests.bot.test_cli import aac
from tests.conftest import TEST_KEYS

KEYS = {"AAC_SECRET_KEYS": TEST_KEYS}


async def _queue_webhook_job(database_url: str) -> int:
    runtime = build_runtime(load_settings({"AAC_DATABASE_URL": database_url, **KEYS}))
    try:
        async with runtime.sessions.begin() as session:
            delivery = WebhookDelivery(
                provider="github",
                delivery_id="worker-cmd-1",
                event="star",
                body=encode_body(json.dumps({"action": "created"}).encode()),
            )
            session.add(delivery)
            await session.flush()
            return await queue.enqueue(session, WEBHOOK_JOB, {"delivery": delivery.id})
    finally:
        await runtime.close()


async def _job_status(database_url: str, job_id: int) -> str:
    runtime = build_runtime(load_settings({"AAC_DATABASE_URL": database_url, **KEYS}))
    try:
        async with runtime.sessions() as session:
            return str(
                (await session.execute(select(Job.status).where(Job.id == job_id))).scalar_one()
            )
    finally:
        await runtime.close()


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_worker_processes_a_queued_job_and_stops_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    upgraded = aac("db", "upgrade", db=database_url, env=KEYS)
    assert upgraded.returncode == 0, upgraded.stderr
    job_id = await _queue_webhook_job(database_url)

    env = {k: v for k, v in os.environ.items() if not k.startswith("AAC_")} | KEYS
    # No AAC_LOG_FORMAT: stderr is a file, so "auto" must mean JSON.
    env |= {"AAC_DATABASE_URL": database_url, "AAC_WORKER_POLL_INTERVAL": "0.2"}
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--concurrency", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while (status := await _job_status(database_url, job_id)) != "done":
                assert status != "dead", log_path.read_text()
                assert worker.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, f"job still {status}: {log_path.read_text()}"
                time.sleep(0.1)
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(60)
    output = log_path.read_text()
    assert code == 0, output
    assert "Traceback" not in output
    assert "worker " in output
    assert " started (database " in output
    assert "stopping: finishing jobs in hand" in output
    assert output.rstrip().endswith("stopped cleanly after 1 job(s)")
    handled = [e for e in _json_lines(output) if e["message"] == "webhook"]
    assert len(handled) == 1
    assert handled[0]["job_id"] == job_id
    assert handled[0]["event"] == "star"
