"""What every ``aac`` command group, the core's and each SCM package's, reports errors with."""

from __future__ import annotations

import sys
from typing import TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A message for the user and an exit code; never a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def say(message: str, stream: TextIO | None = None) -> None:
    """One line for the operator, flushed at once (stdout unless told otherwise)."""
    print(message, file=stream or sys.stdout, flush=True)
