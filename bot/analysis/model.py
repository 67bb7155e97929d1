"""Data shared by clustering, verdicts, the LLM summary and rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.results.model import TestCaseResult


class Verdict(StrEnum):
    """Did this change break the test? Decided from stored history."""

    NEW = "new"  # fails here, passed on the base branch's latest cycle
    ALSO_ON_BASE = "also_on_base"  # fails on the base branch too
    FLAKY = "flaky"  # passed and failed on the same sha, passed on retry, or flips
    UNKNOWN = "unknown"  # no history to compare with


@dataclass(slots=True)
class FailureCluster:
    """Failures sharing one normalised signature: one entry per root cause."""

    signature: str  # stable hash of the normalised exception, message and top frames
    exception_type: str | None
    message_pattern: str  # normalised message (numbers, hex, uuids, paths ... masked); internal
    top_frames: list[str]  # part of the signature; may be a dependency's frames
    tests: list[TestCaseResult] = field(default_factory=list)
    # For people: the first test's own message, line breaks kept, and its innermost frames in
    # the project's own code. The masked pattern above is never shown.
    example_message: str = ""
    own_frames: tuple[str, ...] = ()

    @property
    def representative(self) -> TestCaseResult:
        return self.tests[0]


@dataclass(slots=True)
class ClusterExplanation:
    """The LLM's reading of one cluster, validated."""

    signature: str
    likely_cause: str
    evidence: str  # quoted from the input
    suggested_fix: str
    confidence: float  # 0..1


@dataclass(slots=True)
class LlmSummary:
    """Validated, redacted and sanitised LLM output; absent when no model is usable."""

    summary: str
    clusters: list[ClusterExplanation] = field(default_factory=list)
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
