"""The collector pause around a parse is lifted afterwards, on success and on error alike."""

from __future__ import annotations

import gc
import io
import threading
from collections.abc import Iterator

import pytest

from bot.results.errors import ResultFileError
from bot.results.gc_pause import cyclic_gc_paused
from bot.results.parse import parse_results


@pytest.fixture(autouse=True)
def _gc_enabled() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_parse_pauses_the_collector_and_restores_it() -> None:
    seen: list[bool] = []

    class Spy(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            seen.append(gc.isenabled())
            return super().read(size)

    parse_results(Spy(b'<testsuite><testcase name="t"/></testsuite>'), filename="r.xml")
    assert False in seen  # paused while lxml was fed
    assert gc.isenabled()


def test_collector_is_restored_when_the_file_is_rejected() -> None:
    with pytest.raises(ResultFileError):
        parse_results(io.BytesIO(b"<testsuite><testcase>"), filename="r.xml")
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    with cyclic_gc_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_lift_when_the_last_one_ends() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with cyclic_gc_paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's parse is still running
    release.set()
    thread.join(5)
    assert gc.isenabled()
