"""Every encrypted column and the owner its ciphertexts are bound to (used by rotation)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.models import GithubApp, Integration
from storage.vault import Owner


def integration_owner(org_id: int, provider: str, field: str) -> Owner:
    """Owner of an organisation's SCM (or LLM) token or webhook secret."""
    return Owner(f"org:{org_id}", provider, field)


def github_app_owner(app_row_id: int, field: str) -> Owner:
    """Owner of a GitHub App's private key, webhook secret or OAuth client secret."""
    return Owner(f"github_app:{app_row_id}", "github", field)


@dataclass(frozen=True, slots=True)
class EncryptedField:
    model: type[Any]  # a mapped class with an integer ``id``
    column: str
    owner: Callable[[Any], Owner]


ENCRYPTED_FIELDS: tuple[EncryptedField, ...] = (
    EncryptedField(
        Integration, "token_enc", lambda r: integration_owner(r.org_id, r.provider, "token")
    ),
    EncryptedField(
        Integration,
        "webhook_secret_enc",
        lambda r: integration_owner(r.org_id, r.provider, "webhook_secret"),
    ),
    EncryptedField(GithubApp, "private_key_enc", lambda r: github_app_owner(r.id, "private_key")),
    EncryptedField(
        GithubApp, "webhook_secret_enc", lambda r: github_app_owner(r.id, "webhook_secret")
    ),
    EncryptedField(
        GithubApp, "client_secret_enc", lambda r: github_app_owner(r.id, "client_secret")
    ),
)
