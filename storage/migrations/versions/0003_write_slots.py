"""write_slots: per-installation write serialisation shared by every process

GitHub asks for content-creating calls to be serial and a second apart per installation; with
several web or worker processes, the pacing has to live where they all see it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "write_slots",
        sa.Column("slot", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("held_until", sa.Float(), nullable=True),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_write_slots")),
    )


def downgrade() -> None:
    op.drop_table("write_slots")
