"""Only `aac serve` and `aac db upgrade` create the database file; `aac cycles open`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from bot.links import verify_report_link
from config.settings import load_settings
from storage.keyring_source import load_keys
from storage.models import TestCycle

ROOT = Path(__file__).parents[2]


def aac_in(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`aac ARGS` run from ``cwd`` with no AAC_* settings but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AAC_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        ("org", "list"),
        ("db", "status"),
        ("apikey", "create", "--org", "acme"),
        ("jobs", "list"),
        ("cycles", "open", "0" * 32),
        ("worker",),
        ("keys", "generate", "--add-to-key-file"),
    ],
)
def test_commands_elsewhere_create_no_database(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = aac_in(tmp_path, *command)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"no database at {tmp_path.resolve() / 'aac.db'}" in lines[0]
    assert "aac db upgrade" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no aac.db, no key file


def test_db_upgrade_creates_it_and_then_commands_work(tmp_path: Path) -> None:
    upgraded = aac_in(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "aac.db").exists()
    listed = aac_in(tmp_path, "org", "list")
    assert listed.returncode == 0, listed.stderr
    assert "no organisations yet" in listed.stdout


def test_cycles_open_prints_a_fresh_signed_link(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    env = {"AAC_DATABASE_URL": db, "AAC_PUBLIC_URL": "https://aac.example.com"}
    assert aac_in(tmp_path, "db", "upgrade", env=env).returncode == 0
    assert aac_in(tmp_path, "org", "create", "acme", env=env).returncode == 0
    settings = load_settings(env)

    async def add_cycle() -> str:
        from bot.runtime import build_runtime

        runtime = build_runtime(settings)
        async with runtime.sessions.begin() as session:
            cycle = TestCycle(org_id=1, source="jenkins", repository="a/b", sha="ab" * 20)
            session.add(cycle)
            await session.flush()
            cycle_id = cycle.id
        await runtime.close()
        return cycle_id

    cycle_id = asyncio.run(add_cycle())
    opened = aac_in(tmp_path, "cycles", "open", cycle_id, "--days", "2", env=env)
    assert opened.returncode == 0, opened.stderr
    url = urlparse(opened.stdout.strip())
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"https://aac.example.com/cycles/{cycle_id}"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    keyring = load_keys(settings, create=False).keyring
    assert verify_report_link(
        keyring, cycle_id, exp=query["exp"], kid=query["kid"], sig=query["sig"]
    )
    missing = aac_in(tmp_path, "cycles", "open", "f" * 32, env=env)
    assert missing.returncode == 2
    assert "no cycle" in missing.stderr
