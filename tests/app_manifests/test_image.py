"""The container image, built and started against PostgreSQL where Docker works.

Where ``docker info`` fails (no daemon, as on the development machines) the tests are skipped
and say why; CI with Docker builds the image and checks that it migrates and becomes ready.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEYS, _admin_execute

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "app-manifests" / "deploy" / "Dockerfile"
pytestmark = pytest.mark.slow


def docker_unusable() -> str | None:
    """Why Docker cannot build and run images here, or None when it can."""
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{json .ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        return "no docker command"
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no reason given"])[-1]
        return f"`docker info` failed: {reason}"
    return None


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    reason = docker_unusable()
    if reason is not None:
        pytest.skip(f"Docker is not usable here ({reason}): the image is not built or started")
    tag = f"aac-bot:test-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "build", "-f", str(DOCKERFILE), "-t", tag, str(ROOT)], check=True, timeout=1800
    )
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], check=False, capture_output=True)


@pytest.fixture
def database(pg_admin_url: str) -> Iterator[str]:
    """An empty PostgreSQL database on this machine (the container shares its network)."""
    name = f"aac_image_{uuid.uuid4().hex[:8]}"
    _admin_execute(pg_admin_url, f'CREATE DATABASE "{name}"')
    yield pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    _admin_execute(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_image_runs_as_a_user_with_a_healthcheck(image: str) -> None:
    inspected = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
    )
    [config] = [item["Config"] for item in json.loads(inspected.stdout)]
    assert config["User"] not in ("", "root", "0")
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    assert config["Entrypoint"] + config["Cmd"] == ["aac", "serve"]
    compilers = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", "command -v gcc cc || true"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert compilers.stdout.strip() == ""


def test_the_image_migrates_postgresql_and_becomes_ready(image: str, database: str) -> None:
    env = ["-e", f"AAC_DATABASE_URL={database}", "-e", f"AAC_SECRET_KEYS={TEST_KEYS}"]
    migrated = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", *env, image, "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    started = subprocess.run(
        ["docker", "run", "-d", "--network", "host", *env, "-e", f"AAC_PORT={port}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    container = started.stdout.strip()
    try:
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        assert ready is not None, "the container never answered /readyz"
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ok"
    finally:
        subprocess.run(["docker", "stop", "-t", "30", container], capture_output=True, check=False)
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
