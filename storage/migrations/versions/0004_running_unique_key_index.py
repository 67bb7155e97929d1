"""running-job index on unique_key, for the one-running-job-per-key check

A job whose unique key is held by a running job waits; every claim of a keyed job asks whether
such a job exists. Only running keyed jobs are in the index: a handful of rows at any time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = "status = 'running' AND unique_key IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_jobs_running_unique_key",
        "jobs",
        ["unique_key"],
        sqlite_where=sa.text(WHERE),
        postgresql_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_running_unique_key", table_name="jobs")
