"""Load a cycle's test history (base branch, same commit, recent runs) as plain data for
bot.analysis.verdicts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analysis.verdicts import BaseCycle, TestHistory
from bot.results.model import TestStatus, make_test_id
from storage.models import TestCycle, TestResultRow

RECENT_RUNS = 10
FINISHED = ("done",)


def _branch_refs(base_ref: str) -> list[str]:
    short = base_ref.removeprefix("refs/heads/")
    return [short, f"refs/heads/{short}"]


async def _statuses(
    session: AsyncSession, cycle_id: str, test_ids: set[str] | None = None
) -> dict[str, TestStatus]:
    rows = await session.execute(
        select(TestResultRow.classname, TestResultRow.name, TestResultRow.status).where(
            TestResultRow.cycle_id == cycle_id
        )
    )
    found: dict[str, TestStatus] = {}
    for classname, name, status in rows.all():
        test_id = make_test_id(classname, name)
        if test_ids is None or test_id in test_ids:
            found[test_id] = TestStatus(status)
    return found


async def load_history(
    session: AsyncSession, cycle: TestCycle, interesting: Iterable[str]
) -> TestHistory:
    """History for ``cycle``: the base branch's latest finished cycle (all tests), and for the
    ``interesting`` (failing, flaky) tests their results on the same commit and in recent runs."""
    wanted = set(interesting)
    same_suite = (
        TestCycle.org_id == cycle.org_id,
        TestCycle.source == cycle.source,
        TestCycle.host == cycle.host,
        TestCycle.repository == cycle.repository,
        TestCycle.suite == cycle.suite,
        TestCycle.id != cycle.id,
    )
    base: BaseCycle | None = None
    if cycle.base_ref:
        base_row = (
            (
                await session.execute(
                    select(TestCycle)
                    .where(
                        *same_suite,
                        TestCycle.ref.in_(_branch_refs(cycle.base_ref)),
                        TestCycle.pr.is_(None),
                        TestCycle.status.in_(FINISHED),
                        TestCycle.total > 0,
                    )
                    .order_by(TestCycle.created_at.desc())
                    .limit(1)
                )
            )
            .scalars()
            .first()
        )
        if base_row is not None:
            base = BaseCycle(
                statuses=await _statuses(session, base_row.id),
                sha=base_row.sha,
                duration=base_row.duration,
            )
    same_sha: dict[str, list[TestStatus]] = defaultdict(list)
    recent: dict[str, list[TestStatus]] = defaultdict(list)
    if wanted:
        same_rows = (
            await session.execute(
                select(TestCycle.id).where(
                    *same_suite, TestCycle.sha == cycle.sha, TestCycle.total > 0
                )
            )
        ).scalars()
        for other_id in same_rows:
            for test_id, status in (await _statuses(session, other_id, wanted)).items():
                same_sha[test_id].append(status)
        recent_ids = list(
            (
                await session.execute(
                    select(TestCycle.id)
                    .where(*same_suite, TestCycle.status.in_(FINISHED), TestCycle.total > 0)
                    .order_by(TestCycle.created_at.desc())
                    .limit(RECENT_RUNS)
                )
            ).scalars()
        )
        for other_id in reversed(recent_ids):  # oldest first
            for test_id, status in (await _statuses(session, other_id, wanted)).items():
                recent[test_id].append(status)
    return TestHistory(base=base, same_sha=dict(same_sha), recent=dict(recent))
