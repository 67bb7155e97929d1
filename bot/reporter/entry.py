"""The ``aac`` command of the client-only install (the aac-report distribution): ``aac report``.

It imports nothing but the reporter (httpx and the standard library), so a CI runner installs
it in seconds; the service's commands come with the full aac-bot distribution.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from bot.reporter.command import main as report_main

USAGE = (
    "usage: aac report [options] GLOB...\n"
    "This is the CI client (aac-report): only `aac report` is here; `aac report --help` "
    "lists its options. The service's commands (serve, worker, db, ...) come with aac-bot."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the client's ``aac`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "report":
        print(USAGE, file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        return 0 if args and args[0] in ("-h", "--help") else 2
    return report_main(args[1:], environ=os.environ, out=sys.stdout, err=sys.stderr)
