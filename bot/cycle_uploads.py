"""Storing an uploaded result file so that a repeat replaces it instead of adding to it.

An upload is known by the client's Idempotency-Key and by its content's SHA-256, both per
cycle. Uploading the same file again (a retry after a timeout whose first try did land, a
re-run step, two pipelines' `curl`s) removes the earlier upload's results and stores the new
ones: three uploads of a 5-test file leave 5 tests. Functions take the caller's session,
which must hold the cycle's row locked (PostgreSQL) so two uploads cannot interleave.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cycles
from bot.results.model import TestStatus
from bot.results.parsed import ParsedFile
from storage.models import CycleUpload, TestCycle, TestResultRow


@dataclass(frozen=True, slots=True)
class StoredUpload:
    name: str
    format: str
    tests: int
    replaced: bool


async def store_upload(
    session: AsyncSession,
    cycle: TestCycle,
    parsed: ParsedFile,
    *,
    content_sha256: str,
    idempotency_key: str | None,
) -> StoredUpload:
    """Store ``parsed`` in ``cycle``, replacing an earlier upload with the same key or content."""
    same = CycleUpload.content_sha256 == content_sha256
    if idempotency_key is not None:
        same = or_(same, CycleUpload.idempotency_key == idempotency_key)
    earlier = list(
        (
            await session.execute(
                select(CycleUpload.id).where(CycleUpload.cycle_id == cycle.id, same)
            )
        ).scalars()
    )
    if earlier:
        await session.execute(delete(TestResultRow).where(TestResultRow.upload_id.in_(earlier)))
        await session.execute(delete(CycleUpload).where(CycleUpload.id.in_(earlier)))
        cycle.files = [f for f in cycle.files if f.get("upload") not in earlier]
    upload = CycleUpload(
        cycle_id=cycle.id,
        idempotency_key=idempotency_key,
        content_sha256=content_sha256,
        name=parsed.filename,
    )
    session.add(upload)
    await session.flush()
    stored = await cycles.add_results(
        session, cycle, parsed.filename, parsed.format, parsed.results, upload_id=upload.id
    )
    if earlier:
        await _recount(session, cycle)
    return StoredUpload(stored.name, stored.format, stored.tests, replaced=bool(earlier))


async def _recount(session: AsyncSession, cycle: TestCycle) -> None:
    """Set the cycle's totals from its stored rows (after rows were removed)."""
    rows = await session.execute(
        select(
            TestResultRow.status, func.count(), func.coalesce(func.sum(TestResultRow.duration), 0)
        )
        .where(TestResultRow.cycle_id == cycle.id)
        .group_by(TestResultRow.status)
    )
    counts = {status: (int(n), float(seconds)) for status, n, seconds in rows}

    def count(status: TestStatus) -> int:
        return counts.get(status.value, (0, 0.0))[0]

    cycle.passed = count(TestStatus.PASSED)
    cycle.failed = count(TestStatus.FAILED)
    cycle.errored = count(TestStatus.ERRORED)
    cycle.skipped = count(TestStatus.SKIPPED)
    cycle.flaky = count(TestStatus.FLAKY)
    cycle.total = sum(n for n, _ in counts.values())
    cycle.duration = sum(seconds for _, seconds in counts.values())
