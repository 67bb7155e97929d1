"""Signed, expiring links to a cycle's report page (HMAC-SHA256 with a vault-derived key)."""

from __future__ import annotations

import hashlib
import hmac
import time

from storage.vault import Keyring, VaultError

DEFAULT_LINK_SECONDS = 90 * 24 * 3600  # check runs are read for weeks after the push


def _mac(keyring: Keyring, key_id: str, cycle_id: str, expires: int) -> str:
    message = f"cycle:{cycle_id}:{expires}:{key_id}".encode()
    return hmac.new(keyring.signing_key(key_id), message, hashlib.sha256).hexdigest()


def signed_report_url(
    public_url: str,
    keyring: Keyring,
    cycle_id: str,
    *,
    ttl: int = DEFAULT_LINK_SECONDS,
    now: float | None = None,
) -> str:
    """``{public_url}/cycles/{id}?exp=..&kid=..&sig=..``, valid for ``ttl`` seconds."""
    expires = int((now if now is not None else time.time()) + ttl)
    key_id = keyring.current_id
    sig = _mac(keyring, key_id, cycle_id, expires)
    return f"{public_url}/cycles/{cycle_id}?exp={expires}&kid={key_id}&sig={sig}"


def verify_report_link(
    keyring: Keyring,
    cycle_id: str,
    *,
    exp: str | None,
    kid: str | None,
    sig: str | None,
    now: float | None = None,
) -> bool:
    """True when the signature matches and has not expired (constant-time compare)."""
    if not exp or not kid or not sig or not exp.isdigit():
        return False
    if int(exp) < (now if now is not None else time.time()):
        return False
    try:
        expected = _mac(keyring, kid, cycle_id, int(exp))
    except VaultError:
        return False
    return hmac.compare_digest(expected, sig)
