"""Entry points: detect a result file's dialect by content and parse it, streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Protocol

from bot.results.capture import CaptureTarget
from bot.results.detect import blank_doctype, detect_format, format_of, sniff_root
from bot.results.junit import JUnitTarget
from bot.results.limits import DEFAULT_LIMITS, ParseLimits
from bot.results.model import TestCaseResult
from bot.results.nunit2 import NUnit2Target
from bot.results.nunit3 import NUnit3Target
from bot.results.parsed import ParsedFile, SuiteOutput
from bot.results.source import Readable, XmlSource, open_source
from bot.results.trx import TrxTarget
from bot.results.xml_stream import collect_results, stream_results
from bot.results.xunit2 import XUnit2Target

__all__ = [
    "DEFAULT_LIMITS",
    "ParseLimits",
    "ParsedFile",
    "detect_format",
    "iter_results",
    "parse_results",
]


class _TargetFactory(Protocol):
    def __call__(
        self,
        *,
        namespace: str,
        filename: str,
        limits: ParseLimits,
        suite_outputs: list[SuiteOutput] | None,
    ) -> CaptureTarget: ...


_TARGETS: dict[str, _TargetFactory] = {
    "junit": JUnitTarget,
    "xunit1": XUnit2Target,  # v1 is v2's <assembly> without <assemblies> around it
    "xunit2": XUnit2Target,
    "nunit2": NUnit2Target,
    "nunit3": NUnit3Target,
    "trx": TrxTarget,
}


def _prepare(
    source: XmlSource,
    filename: str,
    limits: ParseLimits,
    suite_outputs: list[SuiteOutput] | None,
) -> tuple[str, CaptureTarget, Readable]:
    root = sniff_root(source.head, filename=filename)
    fmt = format_of(root, filename=filename)
    target = _TARGETS[fmt](
        namespace=root.namespace, filename=filename, limits=limits, suite_outputs=suite_outputs
    )
    return fmt, target, source.reader(blank_doctype(source.head, root))


def iter_results(
    stream: BinaryIO | Readable, *, filename: str, limits: ParseLimits = DEFAULT_LIMITS
) -> Iterator[TestCaseResult]:
    """Yield test cases as they are parsed, keeping none of them.

    It may raise ResultFileError after yielding some results: a caller that needs
    all-or-nothing must discard what it received (or use `parse_results`)."""
    source = open_source(stream, filename=filename, limits=limits)
    _fmt, target, reader = _prepare(source, filename, limits, None)
    yield from stream_results(reader, target, filename=filename)


def parse_results(
    stream: BinaryIO | Readable, *, filename: str, limits: ParseLimits = DEFAULT_LIMITS
) -> ParsedFile:
    """Parse a whole result file (plain or gzip) or raise ResultFileError; never partial."""
    source = open_source(stream, filename=filename, limits=limits)
    suite_outputs: list[SuiteOutput] = []
    fmt, target, reader = _prepare(source, filename, limits, suite_outputs)
    results = collect_results(reader, target, filename=filename)
    return ParsedFile(
        format=fmt,
        filename=filename,
        results=results,
        suite_outputs=suite_outputs,
        compressed=source.compressed,
        counted=target.counted,
    )
