from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from bot.links import signed_report_url, verify_report_link
from storage.vault import Keyring, generate_key_entry

KEYRING = Keyring.parse(generate_key_entry("a"))


def _params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_signed_link_verifies_until_it_expires() -> None:
    url = signed_report_url("https://aac.example.com", KEYRING, "c1", ttl=60, now=1000)
    assert url.startswith("https://aac.example.com/cycles/c1?")
    params = _params(url)
    assert verify_report_link(KEYRING, "c1", **params, now=1059)
    assert not verify_report_link(KEYRING, "c1", **params, now=1061)


def test_tampering_is_refused() -> None:
    params = _params(signed_report_url("https://x", KEYRING, "c1", now=0, ttl=10**9))
    assert not verify_report_link(KEYRING, "c2", **params, now=1)  # another cycle
    assert not verify_report_link(KEYRING, "c1", **{**params, "exp": "9" * 12}, now=1)
    assert not verify_report_link(KEYRING, "c1", **{**params, "sig": "0" * 64}, now=1)
    assert not verify_report_link(KEYRING, "c1", **{**params, "kid": "zz"}, now=1)
    other = Keyring.parse(generate_key_entry("a"))
    assert not verify_report_link(other, "c1", **params, now=1)
    assert not verify_report_link(KEYRING, "c1", exp=None, kid=None, sig=None)
