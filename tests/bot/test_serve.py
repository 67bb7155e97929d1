"""``aac serve`` as an operator starts it: web processes on one port, a worker in each,
webhooks accepted and processed, a clean stop on SIGTERM."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.bot.test_cli import aac
from tests.conftest import TEST_KEYS

SECRET = "serve-test-secret"
EXAMPLE = Path(__file__).parents[1] / "fixtures" / "github" / "webhooks" / "ping.json"
PR_EXAMPLE = (
    Path(__file__).parents[1] / "fixtures" / "github" / "webhooks" / "pull_request.opened.json"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signed(body: bytes, event: str, delivery: str) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={digest}",
    }


@pytest.mark.parametrize("processes", [1, 2])
def test_serve_accepts_processes_and_stops_cleanly(
    tmp_path: Path, github_app_key: tuple[str, str], processes: int
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    keys = {"AAC_SECRET_KEYS": TEST_KEYS}
    pem = tmp_path / "app.pem"
    pem.write_text(github_app_key[0])
    assert aac("db", "upgrade", db=db, env=keys).returncode == 0
    configured = aac(
        "github-app", "configure", "--app-id", "1", "--private-key-file", str(pem),
        "--webhook-secret-stdin", "--slug", "aac-serve", db=db, stdin=SECRET, env=keys,
    )  # fmt: skip
    assert configured.returncode == 0, configured.stderr
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AAC_")} | keys
    env |= {"AAC_DATABASE_URL": db, "AAC_LOG_FORMAT": "json", "AAC_WORKER_POLL_INTERVAL": "0.2"}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port), "--processes", str(processes)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "aac serve did not become ready"
                time.sleep(0.2)
            body = PR_EXAMPLE.read_bytes()
            accepted = http.post(
                "/webhooks/github", content=body, headers=signed(body, "pull_request", "d-1")
            )
            assert accepted.status_code == 202
            ping = EXAMPLE.read_bytes()
            assert http.post(
                "/webhooks/github", content=ping, headers=signed(ping, "ping", "d-2")
            ).json() == {"status": "pong"}
            assert http.get("/api/v1/cycles").status_code == 401  # the rest of the app is there
        # A second service on the same port is refused, not silently given half the traffic.
        second = aac("serve", "--port", str(port), db=db, env=keys)
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
        assert "Traceback" not in second.stderr
        # The delivery's job is run by a worker inside one of the web processes.
        deadline = time.monotonic() + 30
        while _job_status(tmp_path / "aac.db") != "done":
            assert time.monotonic() < deadline, f"job still {_job_status(tmp_path / 'aac.db')}"
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(60)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert code == 0, output
    assert f"listening on http://127.0.0.1:{port}" in output
    assert "Traceback" not in output


def _job_status(db: Path) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT status FROM jobs WHERE kind = 'webhook_event'").fetchone()
    return None if row is None else str(row[0])
