"""Bad input to the operator commands, on both engines: one clear line, exit code 2, and the
whole database exactly as it was."""

from __future__ import annotations

import pytest

from bot.runtime import Runtime
from tests.bot.test_cli import aac
from tests.conftest import TEST_KEYS
from tests.db_snapshot import snapshot

KEYS = {"AAC_SECRET_KEYS": TEST_KEYS}
TOKEN = "glpat-" + "BadInputT0kenBadInpu"


@pytest.fixture
async def acme(runtime: Runtime) -> Runtime:
    """An organisation with a name, an API key and a GitLab integration, made through the CLI."""
    db = runtime.settings.database_url
    created = aac("org", "create", "acme", "--name", "Acme Inc", db=db, env=KEYS)
    assert created.returncode == 0, created.stderr
    assert aac("apikey", "create", "--org", "acme", db=db, env=KEYS).returncode == 0
    stored = aac(
        "integration", "set", "gitlab", "--org", "acme", "--token-stdin",
        "--base-url", "https://gitlab.example.com", db=db, env=KEYS, stdin=TOKEN + "\n",
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    return runtime


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ("org", "create", "acme", "--name", "Someone Else"),
            None,
            "aac: organisation 'acme' already exists",
        ),
        (
            ("org", "create", "Acme_Inc"),
            None,
            "aac: slug 'Acme_Inc' is not valid: use 1-64 lowercase letters, digits and inner "
            "hyphens",
        ),
        (
            ("apikey", "create", "--org", "nope"),
            None,
            "aac: no organisation 'nope'; list them with `aac org list`",
        ),
        (
            ("integration", "set", "gitlab", "--org", "nope", "--token-stdin"),
            "glpat-another-token\n",
            "aac: no organisation 'nope'; list them with `aac org list`",
        ),
        (
            (
                "integration",
                "set",
                "gitlab",
                "--org",
                "acme",
                "--token-stdin",
                "--base-url",
                "http://gitlab.example.com",
            ),
            "glpat-another-token\n",
            "aac: base URL 'http://gitlab.example.com' must start with https:// "
            "(http:// is accepted only for localhost)",
        ),
    ],
    ids=["duplicate-slug", "malformed-slug", "apikey-unknown-org", "token-unknown-org", "http"],
)
async def test_refused_with_one_line_and_nothing_changes(
    acme: Runtime, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    before = await snapshot(acme.engine)
    result = aac(*args, db=acme.settings.database_url, env=KEYS, stdin=stdin)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == message
    assert "glpat-another-token" not in result.stderr
    assert await snapshot(acme.engine) == before
    listed = aac("org", "list", db=acme.settings.database_url, env=KEYS)
    assert listed.stdout.strip() == "acme\tAcme Inc\tintegrations: gitlab"
