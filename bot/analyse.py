"""The ``analyse_cycle`` job: turn a completed cycle's results into its analysis and publish it."""

from __future__ import annotations

import logging
from typing import Any

from bot import cycles
from bot.runtime import Runtime
from bot.worker import PermanentJobError
from storage.models import TestCycle
from storage.queue import ClaimedJob

log = logging.getLogger("aac.analyse")


def headline(cycle: TestCycle) -> str:
    """One line a PR author reads first: counts, flaky, duration, commit."""
    if cycles.is_infrastructure_error(cycle):
        return (
            "Infrastructure error: no test results were reported and the run failed"
            f" · {cycle.sha[:7]}"
        )
    bad = cycle.failed + cycle.errored
    parts = [f"{bad} failed" if bad else f"all {cycle.total:,} passed"]
    if bad:
        parts.append(f"{cycle.passed:,} passed")
    if cycle.flaky:
        parts.append(f"{cycle.flaky} flaky")
    if cycle.skipped:
        parts.append(f"{cycle.skipped} skipped")
    return f"{', '.join(parts)} · {cycle.duration:.1f}s · {cycle.sha[:7]}"


class AnalyseCycle:
    """Job handler bound to a runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def run(self, job: ClaimedJob) -> None:
        cycle_id = job.payload.get("cycle_id")
        if not isinstance(cycle_id, str):
            raise PermanentJobError("payload has no cycle_id")
        async with self.runtime.sessions.begin() as session:
            cycle = await session.get(TestCycle, cycle_id)
            if cycle is None:
                raise PermanentJobError(f"cycle {cycle_id} no longer exists")
            if cycle.status != "analysing":
                log.info("cycle is %s; nothing to analyse", cycle.status)
                return
            analysis: dict[str, Any] = {"headline": headline(cycle)}
            cycle.analysis = analysis
            cycle.status = "infra_error" if cycles.is_infrastructure_error(cycle) else "done"
