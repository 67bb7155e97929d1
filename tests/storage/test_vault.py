from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from providers.github.app import configure_app, load_apps
from storage import orgs
from storage.models import Integration
from storage.rotation import key_ids_in_use, rotate_all
from storage.secret_fields import integration_owner
from storage.vault import (
    Keyring,
    Owner,
    Secret,
    Vault,
    VaultError,
    generate_key_entry,
    key_id_of,
    load_or_create_key_file,
)
from tests.db_snapshot import places_holding

TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
OWNER = Owner("org:1", "github", "token")


def make_vault(*ids: str) -> Vault:
    return Vault(Keyring.parse(",".join(generate_key_entry(i) for i in ids)))


def test_round_trip_and_format() -> None:
    vault = make_vault("a")
    stored = vault.encrypt(TOKEN, OWNER)
    assert stored.startswith("v1:a:")
    assert TOKEN not in stored
    assert vault.decrypt(stored, OWNER).reveal() == TOKEN
    # A fresh nonce each time: the same value never encrypts the same way twice.
    assert vault.encrypt(TOKEN, OWNER) != stored


def test_flipped_byte_fails_clearly() -> None:
    vault = make_vault("a")
    stored = vault.encrypt(TOKEN, OWNER)
    version, key_id, blob = stored.split(":")
    raw = bytearray(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    raw[20] ^= 0x01
    tampered = f"{version}:{key_id}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(VaultError, match="could not decrypt") as info:
        vault.decrypt(tampered, OWNER)
    assert "github token of org:1" in str(info.value)
    assert TOKEN not in str(info.value)


def test_wrong_key_under_the_same_id_fails() -> None:
    stored = make_vault("a").encrypt(TOKEN, OWNER)
    with pytest.raises(VaultError, match="could not decrypt"):
        make_vault("a").decrypt(stored, OWNER)


def test_unknown_key_id_names_the_key() -> None:
    stored = make_vault("old").encrypt(TOKEN, OWNER)
    with pytest.raises(VaultError, match="'old', which is not in the keyring"):
        make_vault("new").decrypt(stored, OWNER)


@pytest.mark.parametrize(
    "other",
    [
        Owner("org:2", "github", "token"),
        Owner("org:1", "gitlab", "token"),
        Owner("org:1", "github", "webhook_secret"),
    ],
)
def test_value_moved_to_another_owner_fails(other: Owner) -> None:
    vault = make_vault("a")
    with pytest.raises(VaultError, match="copied from another row"):
        vault.decrypt(vault.encrypt(TOKEN, OWNER), other)


def test_secret_never_prints_itself() -> None:
    secret = Secret(TOKEN)
    assert TOKEN not in repr(secret)
    assert TOKEN not in f"{secret}"
    assert TOKEN not in str([secret])
    assert secret.reveal() == TOKEN


def test_keyring_rejects_bad_specs() -> None:
    with pytest.raises(VaultError, match="must be 32 bytes"):
        Keyring.parse("a:" + base64.b64encode(b"short").decode())
    with pytest.raises(VaultError, match="id:base64key"):
        Keyring.parse("nocolon")
    entry = generate_key_entry("a")
    with pytest.raises(VaultError, match="appears twice"):
        Keyring.parse(f"{entry},{entry}")
    with pytest.raises(VaultError, match="not valid base64"):
        Keyring.parse("a:!!!notbase64!!!")


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "aac.db.keys"
    first, created = load_or_create_key_file(path)
    assert created
    assert path.stat().st_mode & 0o777 == 0o600
    second, created_again = load_or_create_key_file(path)
    assert not created_again
    assert first.current_id == second.current_id
    path.chmod(0o644)
    with pytest.raises(VaultError, match="readable by others"):
        load_or_create_key_file(path)


async def test_rotation_reencrypts_everything_and_old_keys_can_go(runtime: Runtime) -> None:
    old_spec = generate_key_entry("old")
    old_vault = Vault(Keyring.parse(old_spec))
    async with runtime.sessions.begin() as session:
        for n in range(3):
            org = await orgs.create_org(session, f"org-{n}")
            await orgs.set_integration(
                session, old_vault, org, "github", token=f"{TOKEN}{n}", webhook_secret=f"whs{n}"
            )
    assert await key_ids_in_use(runtime.sessions) == {"old"}

    new_spec = generate_key_entry("new")
    both = Vault(Keyring.parse(f"{new_spec},{old_spec}"))
    report = await rotate_all(runtime.sessions, both)
    assert report.rotated == 6
    # Safe to re-run: nothing left to do.
    again = await rotate_all(runtime.sessions, both)
    assert (again.rotated, again.already_current) == (0, 6)
    assert await key_ids_in_use(runtime.sessions) == {"new"}

    only_new = Vault(Keyring.parse(new_spec))
    async with runtime.sessions() as session:
        rows = (await session.execute(select(Integration).order_by(Integration.org_id))).scalars()
        for n, row in enumerate(rows):
            assert key_id_of(row.token_enc or "") == "new"
            owner = integration_owner(row.org_id, "github", "token")
            assert only_new.decrypt(row.token_enc or "", owner).reveal() == f"{TOKEN}{n}"


async def test_rotation_resumes_after_interruption(runtime: Runtime) -> None:
    old_spec, new_spec = generate_key_entry("old"), generate_key_entry("new")
    old_vault = Vault(Keyring.parse(old_spec))
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        await orgs.set_integration(session, old_vault, org, "gitlab", token=TOKEN)

    class Boom(Exception):
        pass

    def explode(_line: str) -> None:
        raise Boom

    both = Vault(Keyring.parse(f"{new_spec},{old_spec}"))
    with pytest.raises(Boom):
        await rotate_all(runtime.sessions, both, progress=explode)
    # The batch before the interruption committed; a re-run finishes the job.
    report = await rotate_all(runtime.sessions, both)
    assert report.rotated + report.already_current == 1
    assert await key_ids_in_use(runtime.sessions) == {"new"}


async def test_database_and_logs_never_hold_a_secret_in_clear(
    runtime: Runtime, caplog: pytest.LogCaptureFixture, github_app_key: tuple[str, str]
) -> None:
    """Integration token and webhook secret, and the GitHub App's private key and webhook
    secret: searched for in the whole raw database (every SQLite file byte for byte; every
    column of every PostgreSQL table) and in the logs."""
    caplog.set_level(logging.DEBUG)
    pem = github_app_key[0]
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        await orgs.set_integration(
            session, runtime.vault, org, "github", token=TOKEN, webhook_secret="s3cr3t-webhook"
        )
        await configure_app(
            session,
            runtime.vault,
            app_id=1,
            private_key_pem=pem,
            webhook_secret="app-s3cr3t-hook",
            slug="vault-test-app",
        )
    async with runtime.sessions() as session:
        org = await orgs.get_org(session, "acme")
        assert orgs.integration_token(runtime.vault, org, "github") == Secret(TOKEN)
        (app,) = await load_apps(session, runtime.vault)
        assert app.private_key.reveal() == pem
    sqlite_path = runtime.settings.sqlite_path
    await runtime.engine.dispose()  # SQLite: checkpoint the WAL into the file
    # The search does read stored data (a non-secret value is found) ...
    assert await places_holding(runtime.engine, sqlite_path, "vault-test-app") != []
    # ... and finds none of the secrets.
    for secret in (TOKEN, "s3cr3t-webhook", "app-s3cr3t-hook", pem.splitlines()[5]):
        assert await places_holding(runtime.engine, sqlite_path, secret) == [], secret
        assert secret not in caplog.text
