"""pending-job unique index holds only jobs that carry a unique key

Most jobs have no unique key, yet every queued one had an entry in this index: one more B-tree
insert per enqueue and one more delete per claim, on the queue's hottest statements.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 06:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "status = 'queued'"
NEW = "status = 'queued' AND unique_key IS NOT NULL"


def _replace(where: str) -> None:
    op.drop_index("uq_jobs_pending_unique_key", table_name="jobs")
    op.create_index(
        "uq_jobs_pending_unique_key",
        "jobs",
        ["unique_key"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    _replace(NEW)


def downgrade() -> None:
    _replace(OLD)
