"""Every encrypted column and the owner its ciphertexts are bound to (used by rotation and by
redaction, so a new encrypted column is rotated and redacted once it is listed here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import GithubApp, Integration, RunnerSecret
from storage.vault import Owner, Vault, VaultError


def integration_owner(org_id: int, provider: str, field: str) -> Owner:
    """Owner of an organisation's SCM (or LLM) token or webhook secret."""
    return Owner(f"org:{org_id}", provider, field)


def runner_secret_owner(org_id: int, name: str) -> Owner:
    """Owner of a secret a ``run`` suite's environment names."""
    return Owner(f"org:{org_id}", "runner", f"secret:{name}")


def github_app_owner(app_row_id: int, field: str) -> Owner:
    """Owner of a GitHub App's private key, webhook secret or OAuth client secret."""
    return Owner(f"github_app:{app_row_id}", "github", field)


@dataclass(frozen=True, slots=True)
class EncryptedField:
    model: type[Any]  # a mapped class with an integer ``id``
    column: str
    owner: Callable[[Any], Owner]
    # The column naming the organisation a value belongs to; None: the deployment's own
    # secret (the GitHub App's), which can surface in any organisation's output.
    org_column: str | None = None


ENCRYPTED_FIELDS: tuple[EncryptedField, ...] = (
    EncryptedField(
        Integration,
        "token_enc",
        lambda r: integration_owner(r.org_id, r.provider, "token"),
        org_column="org_id",
    ),
    EncryptedField(
        Integration,
        "webhook_secret_enc",
        lambda r: integration_owner(r.org_id, r.provider, "webhook_secret"),
        org_column="org_id",
    ),
    EncryptedField(GithubApp, "private_key_enc", lambda r: github_app_owner(r.id, "private_key")),
    EncryptedField(
        GithubApp, "webhook_secret_enc", lambda r: github_app_owner(r.id, "webhook_secret")
    ),
    EncryptedField(
        GithubApp, "client_secret_enc", lambda r: github_app_owner(r.id, "client_secret")
    ),
    EncryptedField(
        RunnerSecret,
        "value_enc",
        lambda r: runner_secret_owner(r.org_id, r.name),
        org_column="org_id",
    ),
)


async def secrets_for_redaction(
    session: AsyncSession, vault: Vault, org_id: int
) -> tuple[list[str], int]:
    """Every stored secret that could surface in the organisation's output, decrypted for the
    redactor only: its own fields and the deployment's. Also how many did not decrypt."""
    values: list[str] = []
    unreadable = 0
    for spec in ENCRYPTED_FIELDS:
        column = getattr(spec.model, spec.column)
        query = select(spec.model).where(column.is_not(None), column != "")
        if spec.org_column is not None:
            query = query.where(getattr(spec.model, spec.org_column) == org_id)
        for row in (await session.execute(query)).scalars():
            try:
                values.append(vault.decrypt(getattr(row, spec.column), spec.owner(row)).reveal())
            except VaultError:
                unreadable += 1
    return values, unreadable
