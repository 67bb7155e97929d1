"""``aac keys rotate`` racing ``aac integration set``: the token the operator just set survives.

Rotation reads a batch of ciphertexts, re-encrypts them, and writes them back. If a new token
is stored in between, writing back blindly would replace it with the old token, re-encrypted.
The race is made deterministic: the first re-encryption starts a real ``aac integration set``
process and waits until it has finished (or, should rotation ever hold row locks, until it
blocks on one); only then does rotation go on to write. The same race exists on SQLite: its
driver begins the transaction at the first write, so rotation's read is not isolated.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import asyncpg
import pytest

from bot.runtime import Runtime
from bot.worker import listen_dsn_for
from storage import orgs
from storage.rotation import rotate_all
from storage.vault import Keyring, Owner, Vault
from tests.conftest import TEST_KEYS

NEW_KEY, OLD_KEY = TEST_KEYS.split(",")
OLD_TOKEN = "glpat-" + "OldOldOldOldOld12345"
NEW_TOKEN = "glpat-" + "NewNewNewNewNew67890"


def _integration_set(database_url: str, keys: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AAC_")}
    env |= {"AAC_DATABASE_URL": database_url, "AAC_SECRET_KEYS": keys}
    command = ["integration", "set", "gitlab", "--org", "acme", "--token-stdin"]
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdin is not None
    process.stdin.write(NEW_TOKEN + "\n")
    process.stdin.close()
    return process


def _wait_finished_or_blocked(process: subprocess.Popen[str], database_url: str) -> str:
    """'finished' once the process exits, 'blocked' once a PostgreSQL backend of this test
    database waits for a lock. Runs in its own thread: the caller is blocking the event loop
    on purpose, inside rotation's transaction."""
    dsn = listen_dsn_for(database_url)

    async def poll() -> str:
        conn = await asyncpg.connect(dsn) if dsn else None
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    return "finished"
                if conn is not None and await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ):
                    return "blocked"
                await asyncio.sleep(0.02)
            return "timeout"
        finally:
            if conn is not None:
                await conn.close()

    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(asyncio.run(poll())))
    thread.start()
    thread.join()
    return outcome[0]


class RacingVault(Vault):
    """Lets a concurrent `aac integration set` run while rotation holds the value it read."""

    def __init__(self, keyring: Keyring, database_url: str, writer_keys: str) -> None:
        super().__init__(keyring)
        self.database_url = database_url
        self.writer_keys = writer_keys
        self.process: subprocess.Popen[str] | None = None
        self.outcome: str | None = None

    def reencrypt(self, stored: str, owner: Owner) -> str:
        if self.process is None:
            self.process = _integration_set(self.database_url, self.writer_keys)
            self.outcome = _wait_finished_or_blocked(self.process, self.database_url)
        return super().reencrypt(stored, owner)


@pytest.mark.parametrize(
    ("writer_keys", "rotated"),
    [
        # The concurrent writer already encrypts under the new key: nothing left to rotate.
        (TEST_KEYS, 0),
        # A process not yet restarted with the new key stores the token under the old one:
        # rotation must re-encrypt the new token, not skip it.
        (OLD_KEY, 1),
    ],
    ids=["writer-has-new-key", "writer-has-old-key"],
)
async def test_a_token_set_during_rotation_is_not_overwritten(
    runtime: Runtime, writer_keys: str, rotated: int
) -> None:
    old_vault = Vault(Keyring.parse(OLD_KEY))
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        await orgs.set_integration(session, old_vault, org, "gitlab", token=OLD_TOKEN)

    database_url = runtime.settings.database_url
    racing = RacingVault(Keyring.parse(TEST_KEYS), database_url, writer_keys)
    report = await rotate_all(runtime.sessions, racing)
    assert racing.process is not None
    code = racing.process.wait(timeout=60)
    assert racing.process.stderr is not None
    assert code == 0, racing.process.stderr.read()
    assert racing.outcome in ("finished", "blocked"), racing.outcome

    # No lost update: the operator's new token is what is stored ...
    async with runtime.sessions() as session:
        org = await orgs.get_org(session, "acme")
        token = orgs.integration_token(racing, org, "gitlab")
    assert token is not None
    assert token.reveal() == NEW_TOKEN
    # ... and, since rotation compares and swaps, a value written meanwhile under the old key
    # is re-encrypted too: when rotate_all returns, the new key alone reads it.
    assert (report.rotated, report.already_current) == (rotated, 1 - rotated)
    new_only = orgs.integration_token(Vault(Keyring.parse(NEW_KEY)), org, "gitlab")
    assert new_only is not None
    assert new_only.reveal() == NEW_TOKEN
