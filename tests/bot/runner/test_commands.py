"""The operator's `aac runner` subcommands, the node's refusals, and `aac serve --local-runner`."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from storage import orgs, runners
from storage.db import create_engine, session_factory
from storage.models import RunnerJob, TestCycle
from storage.types import utcnow
from tests.bot.test_cli import aac
from tests.bot.test_serve import free_port
from tests.conftest import TEST_KEYS

KEYS = {"AAC_SECRET_KEYS": TEST_KEYS}


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    assert aac("db", "upgrade", db=url, env=KEYS).returncode == 0
    assert aac("org", "create", "acme", db=url, env=KEYS).returncode == 0
    return url


def _rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "aac.db") as conn:
        return conn.execute(sql).fetchall()


def test_register_list_revoke_secret_and_settings(db: str, tmp_path: Path) -> None:
    registered = aac("runner", "register", "--org", "acme", db=db, env=KEYS)
    assert registered.returncode == 0, registered.stderr
    token = next(line for line in registered.stdout.splitlines() if line.startswith("aacreg_"))
    [(stored,)] = _rows(tmp_path, "SELECT token_hash FROM runner_registrations")
    assert token not in str(stored)
    listed = aac("runner", "list", db=db, env=KEYS)
    assert "no runners registered" in listed.stdout

    secret = aac(
        "runner", "secret", "set", "--org", "acme", "--name", "PYPI", "--value-stdin",
        db=db, env=KEYS, stdin="s3cr3t-value\n",
    )  # fmt: skip
    assert secret.returncode == 0, secret.stderr
    assert "s3cr3t" not in secret.stdout + secret.stderr
    [(value_enc,)] = _rows(tmp_path, "SELECT value_enc FROM runner_secrets")
    assert "s3cr3t" not in str(value_enc)

    policy = aac(
        "runner", "settings", "--org", "acme", "--allow-forks",
        "--clone-url", "https://mirror.example/{repository}.git", "--max-attempts", "5",
        db=db, env=KEYS,
    )  # fmt: skip
    assert policy.returncode == 0, policy.stderr
    assert "fork PRs run after /aac approve" in policy.stdout
    assert "5 attempt(s) per job" in policy.stdout
    [(org_settings,)] = _rows(tmp_path, "SELECT settings FROM organizations")
    assert '"max_attempts": 5' in str(org_settings)
    zero = aac("runner", "settings", "--org", "acme", "--max-attempts", "0", db=db, env=KEYS)
    assert zero.returncode == 2
    assert "--max-attempts must be between 1 and 20, not 0" in zero.stderr
    bad = aac("runner", "settings", "--org", "acme", "--clone-url", "https://x", db=db, env=KEYS)
    assert bad.returncode == 2
    assert "{repository}" in bad.stderr

    missing = aac("runner", "revoke", "--org", "acme", "ghost", db=db, env=KEYS)
    assert missing.returncode == 2
    assert "no runner 'ghost'" in missing.stderr
    revoked = aac("runner", "revoke", "--org", "acme", "--registrations", db=db, env=KEYS)
    assert "revoked 1 registration token(s)" in revoked.stdout
    assert "Traceback" not in revoked.stderr


async def _a_node_busy_with_a_job(url: str) -> tuple[int, str]:
    """A node last seen 30 s ago, holding a job it took 42 s ago: (job id, cycle id)."""
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            org = await orgs.get_org(session, "acme")
            runner, _ = await runners.issue_runner_token(session, org.id, "node-x", ["linux"])
            cycle = TestCycle(org_id=org.id, source="ci", repository="acme/w", sha="e" * 40)
            cycle.suite = "unit"
            session.add(cycle)
            await session.flush()
            session.add(RunnerJob(org_id=org.id, cycle_id=cycle.id, suite="unit",
                                  repository="acme/w", sha=cycle.sha))  # fmt: skip
            await session.flush()
            job = await runners.claim_job(session, runner, lease_seconds=30)
            assert job is not None
            job.assigned_at = utcnow() - timedelta(seconds=42)
            runner.last_seen_at = utcnow() - timedelta(seconds=30)
            return job.id, cycle.id
    finally:
        await engine.dispose()


def test_list_shows_each_nodes_last_heartbeat_and_current_job(db: str) -> None:
    job_id, cycle_id = asyncio.run(_a_node_busy_with_a_job(db))
    listed = aac("runner", "list", "--org", "acme", db=db, env=KEYS)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header == "ORG\tNAME\tLABELS\tLAST HEARTBEAT\tSTATE\tCURRENT JOB"
    # The seconds are read again by the command: allow for a slow start.
    assert re.fullmatch(
        rf"acme\tnode-x\tlinux\t3\d s ago\tactive\t"
        rf"job {job_id} cycle {cycle_id} \(acme/w, 4\d s\)",
        row,
    ), row


def test_the_node_refuses_without_a_server_or_a_token() -> None:
    env = {"PATH": os.environ["PATH"], "AAC_RUNNER_TOKEN": "not-a-token"}
    no_server = subprocess.run(
        [sys.executable, "-m", "bot", "runner"], env=env, capture_output=True, text=True, timeout=60
    )
    assert no_server.returncode == 2
    assert "--server URL is required" in no_server.stderr
    bad_token = subprocess.run(
        [sys.executable, "-m", "bot", "runner", "--server", "http://127.0.0.1:9"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad_token.returncode == 2
    assert "set AAC_RUNNER_TOKEN to a runner or registration token" in bad_token.stderr
    assert "not-a-token" not in bad_token.stderr


def test_the_node_names_an_unreachable_or_refusing_bot() -> None:
    env = {"PATH": os.environ["PATH"], "AAC_RUNNER_TOKEN": "aacreg_" + "0" * 12 + "_x"}
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "runner", "--server", f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot reach http://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_local_runner_registers_and_polls(db: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AAC_")} | KEYS
    env |= {"AAC_DATABASE_URL": db, "AAC_LOG_FORMAT": "json"}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port), "--local-runner"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while "polling" not in (tmp_path / "serve.log").read_text():
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        listed = aac("runner", "list", "--org", "acme", db=db, env=KEYS)
        assert "\tlocal\t" in listed.stdout
        assert "\tactive\t" in listed.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        log.close()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
