"""github_apps: the OAuth client id and (encrypted) client secret

`aac github-app create` receives them once from GitHub's manifest flow; kept so a later feature
(user sign-in to the report pages) need not ask a person to generate a new secret. Both are
nullable: Apps configured with `aac github-app configure` never had them stored.

Revision ID: 0012_github_app_client
Revises: 0010_runners
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_github_app_client"
down_revision: str | None = "0011_org_scm_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("github_apps") as batch_op:
        batch_op.add_column(sa.Column("client_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("client_secret_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("github_apps") as batch_op:
        batch_op.drop_column("client_secret_enc")
        batch_op.drop_column("client_id")
