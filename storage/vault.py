"""AES-256-GCM token vault: versioned, key-id tagged ciphertexts bound to their owner.

Stored form: ``v1:<key id>:<base64url(nonce || ciphertext+tag)>``. The associated data binds a
value to (organisation or owner, provider, field), so a ciphertext copied into another row fails
to decrypt instead of silently handing one tenant's token to another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class VaultError(Exception):
    """A key or stored value is unusable; messages name the owner, never the value."""


class Secret:
    """A decrypted value that will not print itself (repr, str and f-strings are masked)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The clear value, for the one call that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))


@dataclass(frozen=True, slots=True)
class Owner:
    """What a stored value belongs to; it becomes the associated data."""

    scope: str  # e.g. "org:42" or "github_app:1"
    provider: str  # "github", "gitlab", "azure", "llm"
    field: str  # "token", "webhook_secret", "private_key", "api_key"

    def aad(self) -> bytes:
        return f"aac|{FORMAT_VERSION}|{self.scope}|{self.provider}|{self.field}".encode()

    def __str__(self) -> str:
        return f"{self.provider} {self.field} of {self.scope}"


@dataclass(frozen=True, slots=True)
class _Key:
    key_id: str
    aead: AESGCM
    derived: bytes  # HMAC key for signed links, derived so the AES key itself is used once


class Keyring:
    """Keys by id; the first is current and encrypts, any may decrypt."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise VaultError("the keyring is empty: set AAC_SECRET_KEYS or run `aac keys generate`")
        seen: set[str] = set()
        parsed: list[_Key] = []
        for key_id, raw in keys:
            if not _KEY_ID.match(key_id):
                raise VaultError(f"key id {key_id!r} must be 1-32 of A-Z a-z 0-9 _ . -")
            if key_id in seen:
                raise VaultError(f"key id {key_id!r} appears twice in the keyring")
            if len(raw) != KEY_BYTES:
                raise VaultError(f"key {key_id!r} must be {KEY_BYTES} bytes, got {len(raw)}")
            seen.add(key_id)
            derived = hmac.new(raw, b"aac|link-signing|v1", hashlib.sha256).digest()
            parsed.append(_Key(key_id, AESGCM(raw), derived))
        self._keys = {k.key_id: k for k in parsed}
        self.current_id = parsed[0].key_id

    def signing_key(self, key_id: str | None = None) -> bytes:
        """A key for HMAC signatures (report links), derived from a vault key."""
        key = self._keys.get(key_id or self.current_id)
        if key is None:
            raise VaultError(f"no key {key_id!r} in the keyring")
        return key.derived

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def get(self, key_id: str) -> AESGCM:
        try:
            return self._keys[key_id].aead
        except KeyError:
            raise VaultError(
                f"value was encrypted with key {key_id!r}, which is not in the keyring "
                "(add it back to AAC_SECRET_KEYS, then run `aac keys rotate`)"
            ) from None

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Parse ``id:base64key,id2:base64key`` (the AAC_SECRET_KEYS format)."""
        keys: list[tuple[str, bytes]] = []
        for n, part in enumerate(p.strip() for p in spec.split(",") if p.strip()):
            key_id, sep, b64 = part.partition(":")
            if not sep:
                raise VaultError(f"entry {n + 1} must look like id:base64key")
            try:
                raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), altchars=b"-_", validate=True)
            except (binascii.Error, ValueError):
                raise VaultError(f"entry {n + 1} ({key_id}): key is not valid base64") from None
            keys.append((key_id.strip(), raw))
        return cls(keys)

    def __repr__(self) -> str:
        return f"Keyring(current={self.current_id!r}, ids={self.key_ids!r})"


def generate_key_entry(key_id: str | None = None) -> str:
    """A fresh ``id:base64key`` entry for AAC_SECRET_KEYS."""
    key_id = key_id or "k" + secrets.token_hex(4)
    if not _KEY_ID.match(key_id):
        raise VaultError(f"key id {key_id!r} must be 1-32 of A-Z a-z 0-9 _ . -")
    return f"{key_id}:{base64.urlsafe_b64encode(AESGCM.generate_key(256)).decode()}"


class Vault:
    """Encrypts and decrypts values for their owners with the keyring's current key."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def encrypt(self, value: str, owner: Owner) -> str:
        """Encrypt ``value`` for ``owner`` under the current key."""
        key_id = self.keyring.current_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.keyring.get(key_id).encrypt(nonce, value.encode(), _aad(owner, key_id))
        blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{FORMAT_VERSION}:{key_id}:{blob}"

    def decrypt(self, stored: str, owner: Owner) -> Secret:
        """Decrypt a stored value for ``owner``; VaultError if altered, moved or keyless."""
        version, key_id, blob = _split(stored, owner)
        if version != FORMAT_VERSION:
            raise VaultError(f"{owner}: unsupported vault format {version!r}")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        except (binascii.Error, ValueError):
            raise VaultError(f"{owner}: stored value is not valid base64") from None
        if len(raw) < NONCE_BYTES + 16:
            raise VaultError(f"{owner}: stored value is truncated")
        try:
            clear = self.keyring.get(key_id).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(owner, key_id)
            )
        except InvalidTag:
            raise VaultError(
                f"{owner}: could not decrypt: the value was altered, encrypted with a different "
                f"key under id {key_id!r}, or copied from another row"
            ) from None
        return Secret(clear.decode())

    def needs_rotation(self, stored: str) -> bool:
        """True when ``stored`` was encrypted under a key other than the current one."""
        parts = stored.split(":", 2)
        return len(parts) != 3 or parts[1] != self.keyring.current_id

    def reencrypt(self, stored: str, owner: Owner) -> str:
        """Decrypt with whichever key sealed it and encrypt under the current key."""
        return self.encrypt(self.decrypt(stored, owner).reveal(), owner)


def key_id_of(stored: str) -> str | None:
    """The key id a stored value names, without decrypting it."""
    parts = stored.split(":", 2)
    return parts[1] if len(parts) == 3 else None


def _aad(owner: Owner, key_id: str) -> bytes:
    return owner.aad() + b"|" + key_id.encode()


def _split(stored: str, owner: Owner) -> tuple[str, str, str]:
    parts = stored.split(":", 2)
    if len(parts) != 3:
        raise VaultError(f"{owner}: stored value is not in vault format")
    return parts[0], parts[1], parts[2]


def load_or_create_key_file(path: Path) -> tuple[Keyring, bool]:
    """Keyring from a 0600 key file beside the SQLite database, creating it on first use.

    Returns the keyring and whether the file was created now.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        if _publish_new_key_file(path):
            return Keyring.parse(path.read_text().strip()), True
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise VaultError(f"key file {path} is readable by others (mode {mode:o}); chmod 600 it")
    return Keyring.parse(path.read_text().strip()), False


def _publish_new_key_file(path: Path) -> bool:
    """Write a fresh key beside ``path`` and hard-link it into place; False when another
    process got there first (its key wins and ours is discarded).

    The link appears whole or not at all: processes starting together (``aac serve`` with
    workers) never read a half-written file, and never end up with two different keys.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(generate_key_entry("k1") + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def prepend_key_to_file(path: Path, entry: str) -> None:
    """Make ``entry`` the current key of a key file, keeping the old keys for decryption."""
    existing = path.read_text().strip() if path.exists() else ""
    write_key_file(path, entry if not existing else f"{entry},{existing}")


def write_key_file(path: Path, spec: str) -> None:
    """Atomically replace a key file's content (mode 0600), after validating it."""
    Keyring.parse(spec)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(spec + "\n")
    os.replace(tmp, path)
