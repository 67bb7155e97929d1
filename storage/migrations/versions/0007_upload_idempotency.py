"""cycle_uploads: each uploaded result file, by idempotency key and content hash

Uploading the same file twice (a client retry after a timeout, a re-run step) added its tests
twice. Each upload is now a row keyed by (cycle, Idempotency-Key) and (cycle, content SHA-256);
its test results point at it, so a repeat replaces them. Existing results keep a NULL
upload_id: they stay as they are and are never matched.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cycle_uploads",
        sa.Column("id", BigIntPk, primary_key=True),
        sa.Column(
            "cycle_id",
            sa.String(32),
            sa.ForeignKey(
                "test_cycles.id",
                ondelete="CASCADE",
                name="fk_cycle_uploads_cycle_id_test_cycles",
            ),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("tests", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cycle_uploads"),
        sa.UniqueConstraint("cycle_id", "idempotency_key", name="uq_cycle_uploads_key"),
        sa.UniqueConstraint("cycle_id", "content_sha256", name="uq_cycle_uploads_content"),
    )
    op.add_column("test_results", sa.Column("upload_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_test_results_upload_id", "test_results", ["upload_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_test_results_upload_id", table_name="test_results")
    with op.batch_alter_table("test_results") as batch_op:
        batch_op.drop_column("upload_id")
    op.drop_table("cycle_uploads")
