"""The job kinds a worker runs and the handler for each."""

from __future__ import annotations

from bot.analyse import AnalyseCycle
from bot.cycles import ANALYSE_JOB
from bot.runtime import Runtime
from bot.worker import Handler


def job_handlers(runtime: Runtime) -> dict[str, Handler]:
    """Handlers by job kind, bound to this process's runtime."""
    return {ANALYSE_JOB: AnalyseCycle(runtime).run}
