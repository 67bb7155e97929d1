"""installations: unique per (App, installation id), not per installation id

Apps on several hosts are supported (github.com and GitHub Enterprise Servers), and each host
numbers its installations itself: a GHES hands out 1, 2, 3... With the id unique on its own, an
event from one host for installation 3 found another host's row and took it over. Existing rows
are kept as they are (they were unique by id, so they are unique by App and id).

Downgrading fails if two Apps now hold the same installation id: say which row to drop first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot drop a constraint in place, so the table is copied.
    with op.batch_alter_table("installations") as batch_op:
        batch_op.drop_constraint("uq_installations_installation_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_installations_app_installation", ["github_app_id", "installation_id"]
        )
        batch_op.create_index("ix_installations_installation_id", ["installation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("installations") as batch_op:
        batch_op.drop_index("ix_installations_installation_id")
        batch_op.drop_constraint("uq_installations_app_installation", type_="unique")
        batch_op.create_unique_constraint("uq_installations_installation_id", ["installation_id"])
