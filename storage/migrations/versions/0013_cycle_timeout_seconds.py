"""test_cycles.timeout_seconds: the time limit a timed-out cycle's run hit

A cycle whose run was killed at its suite's timeout completes with outcome ``timed_out``; the
limit is kept so the check run, statuses, comment and report page can say "timed out after
600 s". Nullable: only timed-out cycles carry it, and a CI may report a timeout without one.

Revision ID: 0013_cycle_timeout_seconds
Revises: 0012_github_app_client
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_cycle_timeout_seconds"
down_revision: str | None = "0012_github_app_client"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch copy: on SQLite a batch recreates the table, and dropping
    # ``test_cycles`` would cascade-delete every stored test result.
    op.add_column("test_cycles", sa.Column("timeout_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("test_cycles", "timeout_seconds")
