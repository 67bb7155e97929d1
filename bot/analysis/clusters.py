"""Group failing tests by normalised signature: one cluster per root cause.

Only FAILED and ERRORED tests are clustered. FLAKY tests (failed, then passed on a retry
within the run) did not fail the cycle, so they are left out here and listed separately by
the report (see ``flaky_results``); a failing test that history calls flaky stays in its
cluster and carries that verdict.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.analysis.model import FailureCluster
from bot.analysis.signature import example_message, failure_signatures, own_frames
from bot.results.model import TestCaseResult, TestStatus

FAILING = frozenset({TestStatus.FAILED, TestStatus.ERRORED})


def is_flaky_result(result: TestCaseResult) -> bool:
    """True for a test that passed only after retrying inside this run."""
    return result.status is TestStatus.FLAKY or (
        result.status is TestStatus.PASSED and result.retries > 0
    )


def flaky_results(results: Iterable[TestCaseResult]) -> list[TestCaseResult]:
    """Tests that passed on a retry within the run, in input order."""
    return [r for r in results if is_flaky_result(r)]


def cluster_failures(results: Iterable[TestCaseResult]) -> list[FailureCluster]:
    """Cluster FAILED/ERRORED results; largest first, ties in order of first appearance."""
    failing = [r for r in results if r.status in FAILING]
    by_digest: dict[str, FailureCluster] = {}
    for result, sig in zip(failing, failure_signatures(failing), strict=True):
        cluster = by_digest.get(sig.digest)
        if cluster is None:
            cluster = FailureCluster(
                signature=sig.digest,
                exception_type=sig.exception_type,
                message_pattern=sig.message,
                top_frames=list(sig.frames),
                example_message=example_message(result),
                own_frames=own_frames(result),
            )
            by_digest[sig.digest] = cluster
        cluster.tests.append(result)
    # sorted() is stable, so equal sizes keep first-appearance order (dict order).
    return sorted(by_digest.values(), key=lambda c: -len(c.tests))
