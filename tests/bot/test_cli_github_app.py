"""``aac github-app configure`` as an operator runs it, against the fake GitHub: the slug
comes from GitHub, and a refusal from GitHub stores nothing."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bot.test_cli import aac
from tests.fakes.github import FakeGithub
from tests.github_constants import APP_ID, APP_SLUG, OWNER, _pem_pair

SECRET = "s3cret-hook\n"


def query(db: str, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db.split(":///", 1)[1])) as conn:
        return conn.execute(sql).fetchall()


def installations(db: str) -> list[tuple[Any, ...]]:
    return query(
        db,
        "SELECT i.installation_id, i.account_login, i.repositories, o.slug, a.app_id, "
        "i.deleted_at FROM installations i JOIN github_apps a ON a.id = i.github_app_id "
        "LEFT JOIN organizations o ON o.id = i.org_id ORDER BY i.installation_id",
    )


def configure(db: str, pem: Path, api_url: str, *extra: str, app_id: int = APP_ID) -> Any:
    return aac(
        "github-app",
        "configure",
        "--app-id",
        str(app_id),
        "--private-key-file",
        str(pem),
        "--webhook-secret-stdin",
        "--api-url",
        api_url,
        *extra,
        db=db,
        stdin=SECRET,
    )


def link(db: str, installation: int, org: str, *extra: str) -> Any:
    return aac(
        "github-app", "link", "--installation", str(installation), "--org", org, *extra, db=db
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    assert aac("db", "upgrade", db=url).returncode == 0
    assert aac("org", "create", OWNER, db=url).returncode == 0
    return url


@pytest.fixture
def fake(github_server: FakeGithub) -> Iterator[FakeGithub]:
    github_server.reset()
    yield github_server
    assert github_server.validation_errors == []


@pytest.fixture
def pem(tmp_path: Path, github_app_key: tuple[str, str]) -> Path:
    path = tmp_path / "app.pem"
    path.write_text(github_app_key[0])
    return path


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- configure: the slug ---------------------------------------------------------------
def test_configure_asks_github_for_the_slug(db: str, fake: FakeGithub, pem: Path) -> None:
    done = configure(db, pem, fake.url)
    assert done.returncode == 0, done.stderr
    assert f"{APP_SLUG}[bot]" in done.stdout
    assert query(db, "SELECT app_id, slug, bot_login FROM github_apps") == [
        (APP_ID, APP_SLUG, f"{APP_SLUG}[bot]")
    ]
    [asked] = [r for r in fake.requests if r.path == "/app"]
    assert asked.credential == "jwt"
    assert asked.status == 200


def test_configure_with_another_apps_key_stores_nothing(
    db: str, fake: FakeGithub, tmp_path: Path
) -> None:
    other = tmp_path / "other.pem"
    other.write_text(_pem_pair()[0])
    refused = configure(db, other, fake.url)
    assert refused.returncode == 2
    assert f"does not belong to App ID {APP_ID}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert query(db, "SELECT count(*) FROM github_apps") == [(0,)]


def test_configure_with_a_slug_does_not_ask_github(db: str, pem: Path) -> None:
    done = configure(db, pem, closed_port_url(), "--slug", "my-aac")
    assert done.returncode == 0, done.stderr
    assert query(db, "SELECT slug, bot_login FROM github_apps") == [("my-aac", "my-aac[bot]")]


def test_configure_when_github_is_unreachable_stores_nothing(db: str, pem: Path) -> None:
    refused = configure(db, pem, closed_port_url())
    assert refused.returncode == 1
    assert "cannot reach GitHub" in refused.stderr
    assert "--slug" in refused.stderr
    assert query(db, "SELECT count(*) FROM github_apps") == [(0,)]
