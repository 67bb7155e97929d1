"""Pausing CPython's cyclic garbage collector while a large result file is parsed.

A 100k-case file allocates 100k+ long-lived result objects; each allocation burst triggers
collections that re-scan every object kept so far, which costs a fifth of the parse. Nothing
the parser allocates forms a reference cycle (results, captured nodes and their lists only
point downwards), so reference counting frees everything and the pause loses nothing. The
pause is process-wide: it is counted across threads and lifted when the last parse ends,
restoring whatever state the process had before the first one began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_was_enabled = False


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block (re-entrant and thread-safe)."""
    global _active, _was_enabled
    with _lock:
        if _active == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _was_enabled:
                gc.enable()
