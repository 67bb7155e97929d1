"""``aac keys rotate`` re-encrypts every stored secret, the GitHub App's private key and webhook
secret included: afterwards the old key can go and the App still works. Both engines; the raw
database never holds a secret in clear."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import httpx
import jwt

from bot.app import create_app
from bot.runtime import Runtime, build_runtime
from config.settings import load_settings
from providers.github.app import load_apps
from providers.github.auth import AppCredentials
from storage import orgs
from storage.vault import generate_key_entry
from tests.bot.test_cli import aac
from tests.conftest import TEST_KEYS
from tests.db_snapshot import places_holding

NEW_KEY, OLD_KEY = TEST_KEYS.split(",")  # "k1:...", "k0:..."
BOTH = {"AAC_SECRET_KEYS": f"{NEW_KEY},{OLD_KEY}"}
OLD_ONLY = {"AAC_SECRET_KEYS": OLD_KEY}
APP_ID = 4242
WEBHOOK_SECRET = "rotate-me-" + "Wh5ecr3t" * 3
TOKEN = "glpat-" + "R0tat10nT0k3n" * 2


def _only_new_key_runtime(database_url: str) -> Runtime:
    return build_runtime(
        load_settings({"AAC_DATABASE_URL": database_url, "AAC_SECRET_KEYS": NEW_KEY})
    )


async def _signed_delivery_accepted(runtime: Runtime) -> bool:
    """The App's webhook secret, decrypted with the new key alone, verifies a delivery."""
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.post(
            "/webhooks/github",
            content=body,
            headers={
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": "rotation-1",
                "X-Hub-Signature-256": f"sha256={digest}",
            },
        )
    await app.state.delivery_writer.close()
    return answer.status_code == 200 and answer.json() == {"status": "pong"}


async def test_rotation_covers_the_github_app_and_the_old_key_can_go(
    database_url: str, tmp_path: Path, github_app_key: tuple[str, str]
) -> None:
    private_pem, public_pem = github_app_key
    pem_file = tmp_path / "app.pem"
    pem_file.write_text(private_pem)
    db = database_url
    # Everything stored under the old key alone.
    assert aac("db", "upgrade", db=db, env=OLD_ONLY).returncode == 0
    assert aac("org", "create", "acme", db=db, env=OLD_ONLY).returncode == 0
    stored = aac(
        "integration", "set", "github", "--org", "acme", "--token-stdin",
        db=db, env=OLD_ONLY, stdin=TOKEN + "\n",
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    configured = aac(
        "github-app", "configure", "--app-id", str(APP_ID), "--private-key-file", str(pem_file),
        "--webhook-secret-stdin", "--slug", "rotation-app",
        db=db, env=OLD_ONLY, stdin=WEBHOOK_SECRET + "\n",
    )  # fmt: skip
    assert configured.returncode == 0, configured.stderr

    rotated = aac("keys", "rotate", db=db, env=BOTH)
    assert rotated.returncode == 0, rotated.stderr
    # The integration's token and the App's private key and webhook secret.
    assert "rotation done: 3 value(s) re-encrypted, 0 already under key k1" in rotated.stdout
    assert "no stored value uses key(s) k0 any more" in rotated.stdout
    assert "github_apps.private_key_enc" in rotated.stderr  # progress names what it checked

    # The old key is dropped: the new key alone reads everything.
    again = aac("keys", "rotate", db=db, env={"AAC_SECRET_KEYS": NEW_KEY})
    assert again.returncode == 0, again.stderr
    assert "0 value(s) re-encrypted, 3 already under key k1" in again.stdout

    runtime = _only_new_key_runtime(db)
    try:
        async with runtime.sessions() as session:
            (app,) = await load_apps(session, runtime.vault)
            org = await orgs.get_org(session, "acme")
            token = orgs.integration_token(runtime.vault, org, "github")
        assert token is not None
        assert token.reveal() == TOKEN
        assert app.private_key.reveal() == private_pem
        assert app.webhook_secret.reveal() == WEBHOOK_SECRET
        # The App still works: its JWT verifies against its public key ...
        claims = jwt.decode(
            AppCredentials(str(APP_ID), app.private_key.reveal()).jwt(),
            public_pem,
            algorithms=["RS256"],
        )
        assert claims["iss"] == str(APP_ID)
        # ... and its webhooks verify.
        assert await _signed_delivery_accepted(runtime)

        # No secret in clear anywhere in the raw database; the search does see stored data.
        sqlite_path = runtime.settings.sqlite_path
        await runtime.engine.dispose()  # SQLite: checkpoint the WAL into the file
        assert await places_holding(runtime.engine, sqlite_path, "rotation-app") != []
        pem_line = private_pem.splitlines()[5]
        for secret in (TOKEN, WEBHOOK_SECRET, pem_line, "PRIVATE KEY"):
            assert await places_holding(runtime.engine, sqlite_path, secret) == [], secret
    finally:
        await runtime.close()


async def test_rotation_skips_and_names_values_no_key_decrypts(database_url: str) -> None:
    """A value sealed by a key the keyring no longer has is left as it is and named; every
    other value still moves to the current key, and the command says it did not finish."""
    lost_key = {"AAC_SECRET_KEYS": generate_key_entry("k9")}
    db = database_url
    assert aac("db", "upgrade", db=db, env=OLD_ONLY).returncode == 0
    for slug, env in (("acme", OLD_ONLY), ("globex", lost_key)):
        assert aac("org", "create", slug, db=db, env=env).returncode == 0
        stored = aac(
            "integration", "set", "github", "--org", slug, "--token-stdin",
            db=db, env=env, stdin=TOKEN + "\n",
        )  # fmt: skip
        assert stored.returncode == 0, stored.stderr

    rotated = aac("keys", "rotate", db=db, env=BOTH)
    assert rotated.returncode == 1
    assert "Traceback" not in rotated.stderr
    assert "rotation done: 1 value(s) re-encrypted" in rotated.stdout
    assert "1 value(s) decrypt with no key" in rotated.stderr
    assert "integrations.token_enc id 2" in rotated.stderr
    runtime = _only_new_key_runtime(db)
    try:
        async with runtime.sessions() as session:
            acme = await orgs.get_org(session, "acme")
            token = orgs.integration_token(runtime.vault, acme, "github")
        assert token is not None
        assert token.reveal() == TOKEN
    finally:
        await runtime.close()
