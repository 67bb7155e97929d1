"""counters: named monotonic counters (SQLite intake ids, periodic job periods)

Retention prunes old webhook deliveries. SQLite's intake numbered new deliveries max(id) + 1,
so once the newest rows were pruned an id came round again, and a job still naming the old
delivery would read the new one. The counter remembers the highest id ever handed out; it
starts at the table's current maximum. Periodic jobs record the last period they were queued
for here, so N workers queue each period once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
# Written against 0005 beside 0008_apikey_scope; chained after it here so the branch has one
# head (the integrator re-chains at merge time).
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.execute(
        "INSERT INTO counters (name, value) "
        "SELECT 'webhook_deliveries', coalesce(max(id), 0) FROM webhook_deliveries"
    )


def downgrade() -> None:
    op.drop_table("counters")
