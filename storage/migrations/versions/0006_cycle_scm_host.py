"""test_cycles: a cycle's identity includes its SCM and host

GitHub PR 5 and GitLab MR !5 of a mirrored ``acme/widgets`` are different changes, and so are
the same repository's PRs on github.com and on a GitHub Enterprise Server. Cycles gain
``host`` (the SCM's API host) and the natural key becomes (organisation, source, host,
repository, sha, suite, pipeline, attempt).

Existing rows are carried over from what is stored: a GitHub cycle gets the API host of the
App whose installation it names (``context_extra.installation_id``) or that is linked to its
organisation, else the host of the organisation's GitHub integration, else api.github.com;
GitLab and Azure cycles get their integration's host or the public service's; other sources
(runners that publish nowhere) keep "".

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The public service of each SCM source, when nothing stored names another host.
DEFAULT_HOSTS = {"github": "api.github.com", "gitlab": "gitlab.com", "azure": "dev.azure.com"}
OLD_KEY = ["org_id", "repository", "sha", "suite", "pipeline_id", "run_attempt"]
NEW_KEY = ["org_id", "source", "host", "repository", "sha", "suite", "pipeline_id", "run_attempt"]


def _host(url: str | None) -> str:
    try:
        parts = urlsplit(url or "")
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return ""
    return f"{host}:{port}" if host and port else host


def _backfill(conn: sa.Connection) -> None:
    integrations: dict[tuple[int, str], str] = {
        (int(org_id), str(provider)): _host(base_url)
        for org_id, provider, base_url in conn.execute(
            sa.text("SELECT org_id, provider, base_url FROM integrations")
        )
    }
    # (org, installation id) -> the App's host; and per organisation its Apps' hosts.
    by_installation: dict[tuple[int, int], str] = {}
    org_app_hosts: dict[int, set[str]] = {}
    for org_id, installation_id, api_url in conn.execute(
        sa.text(
            "SELECT i.org_id, i.installation_id, a.api_url FROM installations i "
            "JOIN github_apps a ON a.id = i.github_app_id WHERE i.org_id IS NOT NULL"
        )
    ):
        host = _host(api_url)
        by_installation[(int(org_id), int(installation_id))] = host
        org_app_hosts.setdefault(int(org_id), set()).add(host)
    cycles = sa.table(
        "test_cycles",
        sa.column("id", sa.String),
        sa.column("org_id", sa.BigInteger),
        sa.column("source", sa.String),
        sa.column("context_extra", sa.JSON),
        sa.column("host", sa.String),
    )
    updates: list[dict[str, Any]] = []
    rows = conn.execute(
        sa.select(cycles.c.id, cycles.c.org_id, cycles.c.source, cycles.c.context_extra).where(
            cycles.c.source.in_(tuple(DEFAULT_HOSTS))
        )
    )
    for cycle_id, org_id, source, extra in rows:
        host = ""
        if source == "github":
            installation = (extra or {}).get("installation_id")
            if isinstance(installation, int):
                host = by_installation.get((int(org_id), installation), "")
            apps = org_app_hosts.get(int(org_id), set())
            if not host and len(apps) == 1:
                host = next(iter(apps))
        host = host or integrations.get((int(org_id), source), "") or DEFAULT_HOSTS[source]
        updates.append({"cycle_id": cycle_id, "new_host": host})
    if updates:
        conn.execute(
            cycles.update().where(cycles.c.id == sa.bindparam("cycle_id")),
            [{"cycle_id": u["cycle_id"], "host": u["new_host"]} for u in updates],
        )


def upgrade() -> None:
    with op.batch_alter_table("test_cycles") as batch_op:
        batch_op.add_column(sa.Column("host", sa.String(255), nullable=False, server_default=""))
    _backfill(op.get_bind())
    with op.batch_alter_table("test_cycles") as batch_op:
        batch_op.drop_constraint("uq_test_cycles_natural_key", type_="unique")
        batch_op.create_unique_constraint("uq_test_cycles_natural_key", NEW_KEY)


def downgrade() -> None:
    # Fails if cycles of two SCMs now share the old key: there is no way to merge them.
    with op.batch_alter_table("test_cycles") as batch_op:
        batch_op.drop_constraint("uq_test_cycles_natural_key", type_="unique")
        batch_op.create_unique_constraint("uq_test_cycles_natural_key", OLD_KEY)
        batch_op.drop_column("host")
