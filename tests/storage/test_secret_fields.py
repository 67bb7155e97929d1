"""Every encrypted column is listed once, so rotation and redaction cannot miss one."""

from __future__ import annotations

from storage.models import Base
from storage.secret_fields import ENCRYPTED_FIELDS


def test_every_encrypted_column_is_listed() -> None:
    columns = {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_enc")
    }
    listed = {(spec.model.__tablename__, spec.column) for spec in ENCRYPTED_FIELDS}
    assert columns == listed
