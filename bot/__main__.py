"""``python -m bot`` is the ``aac`` command."""

import sys

from bot.cli import main

sys.exit(main())
