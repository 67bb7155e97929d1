"""Build a cycle's report model from what is stored: results, history and the saved analysis.

Deterministic parts (clusters, verdicts, deltas) are recomputed, which is cheap; the LLM's
answer is read from the cycle's stored analysis.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.analysis.clusters import cluster_failures, flaky_results
from bot.analysis.model import ClusterExplanation, FailureCluster, LlmSummary
from bot.analysis.redact import Redactor
from bot.analysis.verdicts import TestHistory, compute_deltas, decide_verdicts
from bot.history import load_history
from bot.report.model import ReportModel, TimedOut, build_report
from bot.results.model import TestCaseResult
from providers.context import CiContext
from storage import runners
from storage.models import TestCycle


@dataclass(slots=True)
class CycleAnalysis:
    results: list[TestCaseResult]
    clusters: list[FailureCluster]
    history: TestHistory
    ran_on_node: bool = False  # a testing node ran the suite (read only for a timed-out cycle)


def cycle_context(cycle: TestCycle) -> CiContext:
    """The CI context stored at the cycle's root."""
    return CiContext(
        source=cycle.source,
        host=cycle.host,
        repository=cycle.repository,
        sha=cycle.sha,
        pr=cycle.pr,
        ref=cycle.ref,
        base_ref=cycle.base_ref,
        pipeline_id=cycle.pipeline_id or None,
        pipeline_url=cycle.pipeline_url,
        run_attempt=cycle.run_attempt,
        suite=cycle.suite,
        trigger=cycle.trigger,
        extra=dict(cycle.context_extra or {}),
    )


def redact_result(result: TestCaseResult, redactor: Redactor) -> TestCaseResult:
    """A copy of a result with secrets removed from every text it carries."""
    return dataclasses.replace(
        result,
        message=redactor.redact_optional(result.message),
        stack_trace=redactor.redact_optional(result.stack_trace),
        stdout_tail=redactor.redact_optional(result.stdout_tail),
        stderr_tail=redactor.redact_optional(result.stderr_tail),
    )


async def analyse_stored(
    session: AsyncSession, cycle: TestCycle, redactor: Redactor
) -> CycleAnalysis:
    """Results (redacted: everything downstream is shown or posted), failure clusters and
    history for a cycle."""
    results = [redact_result(r, redactor) for r in await cycles.load_results(session, cycle.id)]
    clusters = cluster_failures(results)
    interesting = {t.test_id for c in clusters for t in c.tests}
    interesting |= {r.test_id for r in flaky_results(results)}
    history = await load_history(session, cycle, interesting)
    # Who stopped a timed-out run is the report's to say; other cycles need not ask.
    ran_on_node = (
        cycle.outcome == cycles.TIMED_OUT
        and await runners.job_for_cycle(session, cycle.id) is not None
    )
    return CycleAnalysis(results, clusters, history, ran_on_node)


def timed_out(cycle: TestCycle, ran_on_node: bool) -> TimedOut | None:
    """What the report says of a run killed at its limit; None when the run was not."""
    if cycle.outcome != cycles.TIMED_OUT:
        return None
    return TimedOut(seconds=cycle.timeout_seconds, by_node=ran_on_node)


def llm_to_json(summary: LlmSummary | None) -> dict[str, object] | None:
    """The LLM summary as stored in the cycle's analysis."""
    if summary is None:
        return None
    return {
        "summary": summary.summary,
        "model": summary.model,
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.completion_tokens,
        "clusters": [
            {
                "signature": c.signature,
                "likely_cause": c.likely_cause,
                "evidence": c.evidence,
                "suggested_fix": c.suggested_fix,
                "confidence": c.confidence,
            }
            for c in summary.clusters
        ],
    }


def llm_from_json(data: object) -> LlmSummary | None:
    """Inverse of ``llm_to_json``; None for anything malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("summary"), str):
        return None
    return LlmSummary(
        summary=data["summary"],
        model=data.get("model"),
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        clusters=[
            ClusterExplanation(
                signature=str(c.get("signature")),
                likely_cause=str(c.get("likely_cause") or ""),
                evidence=str(c.get("evidence") or ""),
                suggested_fix=str(c.get("suggested_fix") or ""),
                confidence=float(c.get("confidence") or 0.0),
            )
            for c in data.get("clusters") or []
            if isinstance(c, dict)
        ],
    )


def report_for(
    cycle: TestCycle,
    analysis: CycleAnalysis,
    public_url: str,
    *,
    scm_base_url: str | None = None,
    report_url: str | None = None,
) -> ReportModel:
    """The report model of a cycle whose analysis is done. ``scm_base_url``, the
    integration's, locates its commit and PR/MR pages; ``report_url`` is the link that reaches
    readers (a signed one for anything published), by default the bare page URL."""
    stored = cycle.analysis or {}
    failing = [t for c in analysis.clusters for t in c.tests]
    verdicts = decide_verdicts([*failing, *flaky_results(analysis.results)], analysis.history)
    deltas = compute_deltas(analysis.results, analysis.history, cycle.duration)
    infra = cycles.is_infrastructure_error(cycle)
    return build_report(
        cycle_context(cycle),
        analysis.results,
        analysis.clusters,
        verdicts,
        deltas,
        llm_from_json(stored.get("llm")),
        duration=cycle.duration,
        pipeline_failed=infra or cycle.outcome == "failure",
        report_url=report_url or f"{public_url}/cycles/{cycle.id}",
        cycle_id=cycle.id,
        llm_note=stored.get("llm_note"),
        infra_reason=(
            "The pipeline failed before any test result was reported." if infra else None
        ),
        scm_base_url=scm_base_url,
        timed_out=timed_out(cycle, analysis.ran_on_node),
    )
