"""The one report model every renderer reads, and the builder that assembles it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bot.analysis.clusters import FAILING, is_flaky_result
from bot.analysis.model import ClusterExplanation, FailureCluster, LlmSummary, Verdict
from bot.analysis.verdicts import Deltas, TestVerdict
from bot.report.web_links import WebLinks, web_links
from bot.results.model import TestCaseResult, TestStatus
from providers.context import CiContext

# Offered to callers for when a model was configured but could not answer.
LLM_UNAVAILABLE_NOTE = "AI summary unavailable for this run; the analysis below is deterministic."
SHORT_SHA_LEN = 7


class CycleStatus(StrEnum):
    """What the cycle amounts to. INFRA_ERROR is never reported as "0 tests passed"."""

    PASSED = "passed"
    FAILED = "failed"
    INFRA_ERROR = "infra_error"  # no results and the pipeline failed
    NO_RESULTS = "no_results"  # no results, but nothing says the pipeline failed
    TIMED_OUT = "timed_out"  # killed at its time limit; results uploaded before are kept


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The run was killed at its time limit."""

    seconds: int | None = None  # the limit, when known
    by_node: bool = False  # a testing node killed the command (else the CI reported it)


@dataclass(frozen=True, slots=True)
class CycleIdentity:
    """Which cycle this is and where to read more."""

    repository: str
    sha: str
    short_sha: str
    suite: str
    pr: int | None = None
    pipeline_url: str | None = None
    report_url: str | None = None
    cycle_id: str | None = None
    web: WebLinks = field(default_factory=WebLinks)  # commit, PR/MR and pipeline pages
    run_attempt: int = 1  # which run of this suite at this commit


@dataclass(frozen=True, slots=True)
class Totals:
    """Counts by status, as the cycle JSON carries them."""

    total: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    skipped: int = 0
    flaky: int = 0

    @property
    def failing(self) -> int:
        """Failed plus errored: what makes the cycle red."""
        return self.failed + self.errored


@dataclass(frozen=True, slots=True)
class ReportTest:
    """One failing or flaky test with its verdict."""

    result: TestCaseResult
    verdict: Verdict = Verdict.UNKNOWN
    reason: str = ""
    flip_rate: float | None = None


@dataclass(frozen=True, slots=True)
class ReportCluster:
    """One root cause, the tests it hits and, when available, the LLM's reading of it."""

    signature: str
    exception_type: str | None
    message_pattern: str  # masked, internal: never shown to people
    top_frames: tuple[str, ...]  # the signature's; may be a dependency's
    tests: tuple[ReportTest, ...]
    explanation: ClusterExplanation | None = None
    example_message: str = ""  # the first test's own message, line breaks kept
    own_frames: tuple[str, ...] = ()  # innermost frames in the project's own code
    new_count: int = field(init=False)  # tests with verdict NEW; sorted on, so computed once

    def __post_init__(self) -> None:
        object.__setattr__(self, "new_count", sum(t.verdict is Verdict.NEW for t in self.tests))


@dataclass(frozen=True, slots=True)
class ReportModel:
    """Everything a renderer may show; renderers decide how much fits."""

    identity: CycleIdentity
    status: CycleStatus
    totals: Totals
    duration: float | None  # seconds
    clusters: tuple[ReportCluster, ...]  # size desc, as clustered
    flaky: tuple[ReportTest, ...]  # passed on retry within this run
    passed_tests: tuple[str, ...]  # test ids, in input order
    deltas: Deltas | None
    has_history: bool
    llm: LlmSummary | None = None
    llm_note: str | None = None  # shown only when ``llm`` is None
    infra_reason: str | None = None
    timed_out: TimedOut | None = None

    new_failures: int = field(init=False)  # failing tests new in this PR
    flaky_failures: int = field(init=False)  # failing tests that history calls flaky

    def __post_init__(self) -> None:
        object.__setattr__(self, "new_failures", sum(c.new_count for c in self.clusters))
        flaky = sum(t.verdict is Verdict.FLAKY for c in self.clusters for t in c.tests)
        object.__setattr__(self, "flaky_failures", flaky)


def _totals(results: Sequence[TestCaseResult]) -> Totals:
    counts = Counter(r.status for r in results)
    return Totals(
        total=len(results),
        passed=counts[TestStatus.PASSED],
        failed=counts[TestStatus.FAILED],
        errored=counts[TestStatus.ERRORED],
        skipped=counts[TestStatus.SKIPPED],
        flaky=counts[TestStatus.FLAKY],
    )


def _report_test(result: TestCaseResult, verdicts: Mapping[str, TestVerdict]) -> ReportTest:
    v = verdicts.get(result.test_id)
    if v is None:
        if is_flaky_result(result):
            return ReportTest(result, Verdict.FLAKY, "passed on retry")
        return ReportTest(result)
    return ReportTest(result, v.verdict, v.reason, v.flip_rate)


def cycle_status(totals: Totals, pipeline_failed: bool, timed_out: bool = False) -> CycleStatus:
    """TIMED_OUT for a killed run, whatever it uploaded (green tests of a run cut short say
    nothing of the rest); else PASSED/FAILED from the counts; with no results, INFRA_ERROR if
    the pipeline failed."""
    if timed_out:
        return CycleStatus.TIMED_OUT
    if totals.total == 0:
        return CycleStatus.INFRA_ERROR if pipeline_failed else CycleStatus.NO_RESULTS
    return CycleStatus.FAILED if totals.failing else CycleStatus.PASSED


def build_report(
    ctx: CiContext,
    results: Sequence[TestCaseResult],
    clusters: Sequence[FailureCluster],
    verdicts: Mapping[str, TestVerdict],
    deltas: Deltas | None,
    llm: LlmSummary | None,
    *,
    duration: float | None = None,
    pipeline_failed: bool = False,
    report_url: str | None = None,
    cycle_id: str | None = None,
    llm_note: str | None = None,
    infra_reason: str | None = None,
    scm_base_url: str | None = None,
    timed_out: TimedOut | None = None,
) -> ReportModel:
    """Assemble the report model; ``duration`` defaults to the sum of test durations;
    ``scm_base_url`` (the integration's) locates the commit and PR/MR pages."""
    totals = _totals(results)
    explanations = {e.signature: e for e in llm.clusters} if llm is not None else {}
    report_clusters = tuple(
        ReportCluster(
            signature=c.signature,
            exception_type=c.exception_type,
            message_pattern=c.message_pattern,
            top_frames=tuple(c.top_frames),
            tests=tuple(_report_test(t, verdicts) for t in c.tests),
            explanation=explanations.get(c.signature),
            example_message=c.example_message,
            own_frames=c.own_frames,
        )
        for c in clusters
    )
    flaky = tuple(_report_test(r, verdicts) for r in results if is_flaky_result(r))
    passed = tuple(
        r.test_id for r in results if r.status is TestStatus.PASSED and not is_flaky_result(r)
    )
    identity = CycleIdentity(
        repository=ctx.repository,
        sha=ctx.sha,
        short_sha=ctx.sha[:SHORT_SHA_LEN],
        suite=ctx.suite,
        pr=ctx.pr,
        pipeline_url=ctx.pipeline_url,
        report_url=report_url,
        cycle_id=cycle_id,
        web=web_links(ctx, scm_base_url),
        run_attempt=ctx.run_attempt,
    )
    if duration is None and results:
        duration = sum(r.duration for r in results)
    return ReportModel(
        identity=identity,
        status=cycle_status(totals, pipeline_failed, timed_out is not None),
        totals=totals,
        duration=duration,
        clusters=report_clusters,
        flaky=flaky,
        passed_tests=passed,
        deltas=deltas,
        has_history=deltas is not None and deltas.has_history,
        llm=llm,
        llm_note=llm_note,
        infra_reason=infra_reason,
        timed_out=timed_out,
    )


def display_clusters(model: ReportModel) -> list[ReportCluster]:
    """Clusters with new failures first, then by size (stable otherwise)."""
    return sorted(model.clusters, key=lambda c: (c.new_count == 0, -len(c.tests)))


def failing_results(model: ReportModel) -> list[ReportTest]:
    """Every failing test in cluster order."""
    return [t for c in model.clusters for t in c.tests if t.result.status in FAILING]
