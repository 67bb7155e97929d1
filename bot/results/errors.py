"""The one error a result file can raise: what went wrong, where, and a machine code."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Short machine codes for rejected result files (stable: stored and shown to CI users)."""

    EMPTY = "empty"
    INVALID_XML = "invalid_xml"
    INVALID_ENCODING = "invalid_encoding"
    INVALID_GZIP = "invalid_gzip"
    UNKNOWN_FORMAT = "unknown_format"
    DTD_FORBIDDEN = "dtd_forbidden"
    TOO_LARGE = "too_large"
    TOO_MANY_CASES = "too_many_cases"


class ResultFileError(ValueError):
    """A result file was rejected; `reason` names the file and, when known, the position."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        filename: str,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.code = code
        self.detail = detail
        self.filename = filename
        self.line = line
        self.column = column
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        """Human message, e.g. "results/junit.xml line 12, column 4: mismatched tag"."""
        where = self.filename
        if self.line is not None:
            where += f" line {self.line}"
            if self.column is not None:
                where += f", column {self.column}"
        return f"{where}: {self.detail}"
