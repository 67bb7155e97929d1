"""What parsing one result file returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.results.model import TestCaseResult


@dataclass(slots=True)
class SuiteOutput:
    """Captured output attached to a suite rather than a test (setup logs, build errors)."""

    suite: str
    stdout_tail: str | None = None
    stderr_tail: str | None = None


@dataclass(slots=True)
class ParsedFile:
    """All test cases of one result file, parsed completely (never a partial file)."""

    format: str  # one of bot.results.detect.FORMATS
    filename: str
    results: list[TestCaseResult] = field(default_factory=list)
    suite_outputs: list[SuiteOutput] = field(default_factory=list)
    compressed: bool = False
    # How many of `results` were counted from suite attributes (`TestCaseResult.counted`):
    # the file gave totals only, so those tests have no names, messages or history.
    counted: int = 0
