"""The operator commands, run as real processes the way an operator types them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_KEYS
from tests.fakes.github import FakeGithub

TOKEN = "glpat-" + "AbCdEfGhIjKlMnOpQrSt"


def aac(
    *args: str, db: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = (
        {k: v for k, v in os.environ.items() if not k.startswith("AAC_")}
        | {"AAC_DATABASE_URL": db, "AAC_LOG_FORMAT": "json"}
        | (env or {})
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/aac.db"


def test_operator_walkthrough_on_the_embedded_default(db: str, tmp_path: Path) -> None:
    upgraded = aac("db", "upgrade", db=db)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded" in upgraded.stdout
    keyfile = tmp_path / "aac.db.keys"
    assert keyfile.stat().st_mode & 0o777 == 0o600
    assert "created a new secret key file" in upgraded.stderr
    assert "already at" in aac("db", "upgrade", db=db).stdout

    created = aac("org", "create", "acme", db=db)
    assert created.returncode == 0
    assert "next: aac apikey create --org acme" in created.stdout
    dup = aac("org", "create", "acme", db=db)
    assert dup.returncode == 2
    assert "already exists" in dup.stderr
    assert "Traceback" not in dup.stderr

    key = aac("apikey", "create", "--org", "acme", db=db)
    assert key.returncode == 0
    assert key.stdout.strip().startswith("aac_")
    assert "shown only now" in key.stderr
    unknown = aac("apikey", "create", "--org", "nope", db=db)
    assert unknown.returncode == 2
    assert "no organisation 'nope'" in unknown.stderr

    stored = aac(
        "integration",
        "set",
        "gitlab",
        "--org",
        "acme",
        "--token-stdin",
        "--base-url",
        "https://gitlab.example.com",
        db=db,
        stdin=TOKEN + "\n",
    )
    assert stored.returncode == 0, stored.stderr
    assert TOKEN not in stored.stdout + stored.stderr
    empty = aac("integration", "set", "gitlab", "--org", "acme", "--token-stdin", db=db, stdin="")
    assert empty.returncode == 2
    assert "expected 1 non-empty line" in empty.stderr
    listed = aac("org", "list", db=db)
    assert "acme" in listed.stdout
    assert "gitlab" in listed.stdout

    # Rotate the embedded key file: add a key, re-encrypt, drop the old one.
    old_id = keyfile.read_text().split(":", 1)[0]
    added = aac("keys", "generate", "--id", "k2", "--add-to-key-file", db=db)
    assert added.returncode == 0, added.stderr
    rotated = aac("keys", "rotate", "--drop-old-keys", db=db)
    assert rotated.returncode == 0, rotated.stderr
    assert "1 value(s) re-encrypted" in rotated.stdout
    assert f"removed unused key(s) {old_id}" in rotated.stdout
    assert keyfile.read_text().startswith("k2:")
    assert f"{old_id}:" not in keyfile.read_text()
    # Still readable with only the new key: a second rotation finds nothing to do.
    again = aac("keys", "rotate", db=db)
    assert "0 value(s) re-encrypted, 1 already under key k2" in again.stdout

    for path in tmp_path.glob("aac.db*"):
        assert TOKEN.encode() not in path.read_bytes()

    jobs = aac("jobs", "list", "--dead", db=db)
    assert jobs.returncode == 0
    assert "no dead jobs" in jobs.stdout
    retry = aac("jobs", "retry", "12345", db=db)
    assert retry.returncode == 2
    assert "no job 12345" in retry.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"AAC_PORT": "eighty"}, "AAC_PORT:"),
        ({"AAC_DATABASE_URL": "mysql://localhost/aac"}, "AAC_DATABASE_URL:"),
        ({"AAC_SECRET_KEYS": "k1:tooshort"}, "AAC_SECRET_KEYS:"),
    ],
)
def test_bad_configuration_is_one_clear_line(db: str, env: dict[str, str], needle: str) -> None:
    result = aac("org", "list", db=db, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert needle in lines[0]
    assert "tooshort" not in result.stderr


def test_postgresql_without_keys_refuses(db: str) -> None:
    result = aac("org", "list", db="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    assert result.returncode == 2
    assert "AAC_SECRET_KEYS: required" in result.stderr


def test_unreachable_database_is_named_without_password(tmp_path: Path) -> None:
    result = aac(
        "org",
        "list",
        db="postgresql+asyncpg://aac:hunter2@127.0.0.1:1/aac",
        env={"AAC_SECRET_KEYS": TEST_KEYS},
    )
    assert result.returncode == 1
    assert "cannot use the database" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


def test_secrets_on_stdin_reach_neither_output_nor_logs(db: str) -> None:
    aac("db", "upgrade", db=db)
    aac("org", "create", "acme", db=db)
    result = aac(
        "integration",
        "set",
        "github",
        "--org",
        "acme",
        "--token-stdin",
        "--webhook-secret-stdin",
        db=db,
        stdin=f"{TOKEN}\nwebhook-s3cret\n",
        env={"AAC_LOG_LEVEL": "DEBUG"},
    )
    assert result.returncode == 0, result.stderr
    assert "token and webhook secret stored" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    assert "webhook-s3cret" not in result.stdout + result.stderr


def test_github_app_configure_and_link(
    db: str, tmp_path: Path, github_server: FakeGithub, github_app_key: tuple[str, str]
) -> None:
    github_server.reset()
    aac("db", "upgrade", db=db)
    aac("org", "create", "octo-org", db=db)
    pem = tmp_path / "app.pem"
    pem.write_text(github_app_key[0])
    early = aac("github-app", "link", "--installation", "77", "--org", "octo-org", db=db)
    assert early.returncode == 2
    assert "aac github-app configure" in early.stderr
    missing = aac(
        "github-app",
        "configure",
        "--app-id",
        "1",
        "--private-key-file",
        str(tmp_path / "no.pem"),
        "--webhook-secret-stdin",
        db=db,
        stdin="s3cret-hook\n",
    )
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    done = aac(
        "github-app",
        "configure",
        "--app-id",
        "4242",
        "--private-key-file",
        str(pem),
        "--webhook-secret-stdin",
        "--slug",
        "aac-test",
        "--api-url",
        github_server.url,
        db=db,
        stdin="s3cret-hook\n",
    )
    assert done.returncode == 0, done.stderr
    assert "/webhooks/github" in done.stdout
    linked = aac("github-app", "link", "--installation", "77", "--org", "octo-org", db=db)
    assert linked.returncode == 0, linked.stderr
    assert "publishes for octo-org" in linked.stdout
    for path in tmp_path.glob("aac.db*"):
        data = path.read_bytes()
        assert b"s3cret-hook" not in data
        assert b"PRIVATE KEY" not in data


def test_a_misspelt_setting_is_reported_and_the_command_still_runs(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    assert aac("db", "upgrade", db=db).returncode == 0
    result = aac("org", "list", db=db, env={"AAC_LOG_LEVL": "DEBUG"})
    assert result.returncode == 0
    assert "AAC_LOG_LEVL is not a setting and is ignored; did you mean AAC_LOG_LEVEL?" in (
        result.stderr
    )


def test_apikey_create_takes_a_scope(db: str) -> None:
    assert aac("db", "upgrade", db=db).returncode == 0
    assert aac("org", "create", "acme", db=db).returncode == 0
    read = aac("apikey", "create", "--org", "acme", "--scope", "read", db=db)
    assert read.returncode == 0, read.stderr
    assert "with scope read;" in read.stderr
    both = aac("apikey", "create", "--org", "acme", db=db)
    assert "with scope report,read;" in both.stderr
    bad = aac("apikey", "create", "--org", "acme", "--scope", "admin", db=db)
    assert bad.returncode == 2
    assert "invalid choice: 'admin'" in bad.stderr


def test_a_generated_gitlab_webhook_secret_is_shown_once_and_stored_encrypted(
    db: str, tmp_path: Path
) -> None:
    assert aac("db", "upgrade", db=db).returncode == 0
    assert aac("org", "create", "acme", db=db).returncode == 0
    made = aac("integration", "set", "gitlab", "--org", "acme", "--generate-webhook-secret", db=db)
    assert made.returncode == 0, made.stderr
    [line] = [x for x in made.stdout.splitlines() if x.startswith("webhook secret: ")]
    secret = line.removeprefix("webhook secret: ")
    assert len(secret) >= 32
    assert "/webhooks/gitlab/acme" in made.stderr
    assert "not shown again" in made.stderr
    for path in tmp_path.glob("aac.db*"):
        assert secret.encode() not in path.read_bytes()
    both = aac(
        "integration",
        "set",
        "gitlab",
        "--org",
        "acme",
        "--webhook-secret-stdin",
        "--generate-webhook-secret",
        db=db,
        stdin="given\n",
    )
    assert both.returncode == 2
    assert "not both" in both.stderr
