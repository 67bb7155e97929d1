"""org_scm_claims: the SCM accounts an organisation may claim, and which App verified a delivery

Installations no longer link by account login alone: an organisation lists the accounts it
claims (``aac org create --github-account``), existing ones none (linked installations stay
linked). A delivery records the App whose secret verified it; older rows have none.

Revision ID: 0011_org_scm_claims
Revises: 0010_runners
Create Date: 2026-12-04 19:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_org_scm_claims"
down_revision: str | None = "0010_runners"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch copy: on SQLite a batch drops and recreates the table, and
    # dropping ``organizations`` would cascade-delete every row that references it.
    json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.add_column(
        "organizations",
        sa.Column("scm_claims", json_type, nullable=False, server_default="{}"),
    )
    op.add_column("webhook_deliveries", sa.Column("app_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("webhook_deliveries", "app_id")
    op.drop_column("organizations", "scm_claims")
