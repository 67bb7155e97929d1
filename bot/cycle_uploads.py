"""Storing an uploaded result file so that a repeat replaces it instead of adding to it.

An upload is known by the client's Idempotency-Key and by its content's SHA-256, both per
cycle. Uploading the same file again (a retry after a timeout whose first try did land, a
re-run step, two pipelines' `curl`s) removes the earlier upload's results and stores the new
ones: three uploads of a 5-test file leave 5 tests. Functions take the caller's session and
never commit.

Concurrent uploads to one cycle (matrix jobs sharing it) must not lose each other's counts:
the cycle row is read locked where the engine can (PostgreSQL), and the totals and file list
are always rebuilt from the rows inside the writing transaction (SQLite's driver reads before
its transaction begins, so what was read may be stale). Two first uploads of the same file
racing each other meet the unique (cycle, content) constraint; the caller retries the loser,
which then finds and replaces the winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    upload = CycleUpload(
        cycle_id=cycle.id,
        idempotency_key=idempotency_key,
        content_sha256=content_sha256,
        name=parsed.filename,
        format=parsed.format,
        tests=len(parsed.results),
    )
    session.add(upload)
    await session.flush()
    stored = await cycles.add_results(
        session, cycle, parsed.filename, parsed.format, parsed.results, upload_id=upload.id
    )
    await _recount(session, cycle)
    await _list_files(session, cycle)
    return StoredUpload(stored.name, stored.format, stored.tests, replaced=bool(earlier))


async def _recount(session: AsyncSession, cycle: TestCycle) -> None:
    """Set the cycle's totals from its stored rows."""
    rows = await session.execute(
        select(
            TestResultRow.status,
            func.count(),
            func.coalesce(func.sum(TestResultRow.duration), 0.0),
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


async def _list_files(session: AsyncSession, cycle: TestCycle) -> None:
    """The cycle's file list: its uploads as stored now, after the entries no upload row
    backs (files a workflow run's artifacts brought, refused ones, older cycles' entries)."""
    uploads = await session.execute(
        select(CycleUpload).where(CycleUpload.cycle_id == cycle.id).order_by(CycleUpload.id)
    )
    listed: list[dict[str, Any]] = [
        {"name": u.name, "format": u.format, "tests": u.tests, "upload": u.id}
        for u in uploads.scalars()
    ]
    cycle.files = [f for f in cycle.files if "upload" not in f] + listed
