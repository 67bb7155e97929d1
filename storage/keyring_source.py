"""Where the vault's keys come from: AAC_SECRET_KEYS, or a key file beside the SQLite database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings, SettingsError
from storage.vault import Keyring, VaultError, load_or_create_key_file


@dataclass(frozen=True, slots=True)
class KeySource:
    keyring: Keyring
    key_file: Path | None  # set when the keys live in a file rather than the environment
    created: bool  # the key file was created just now


def key_file_path(settings: Settings) -> Path | None:
    """The key file used by the embedded default (``<database>.keys``), if any."""
    db = settings.sqlite_path
    return db.with_name(db.name + ".keys") if db is not None else None


def load_keys(settings: Settings, *, create: bool = True) -> KeySource:
    """The keyring for these settings; PostgreSQL deployments must set AAC_SECRET_KEYS."""
    if settings.secret_keys:
        try:
            return KeySource(Keyring.parse(settings.secret_keys), None, False)
        except VaultError as exc:
            raise SettingsError(f"AAC_SECRET_KEYS: {exc}") from None
    path = key_file_path(settings)
    if path is None:
        raise SettingsError(
            "AAC_SECRET_KEYS: required when the database is not a local SQLite file; "
            "generate one with `aac keys generate` and set it on every web and worker process"
        )
    if not path.exists() and not create:
        raise SettingsError(f"AAC_SECRET_KEYS: not set and no key file at {path}")
    try:
        keyring, created = load_or_create_key_file(path)
    except VaultError as exc:
        raise SettingsError(f"AAC_SECRET_KEYS: {exc}") from None
    return KeySource(keyring, path, created)
