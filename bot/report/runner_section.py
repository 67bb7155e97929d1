"""The report page's "testing node" section: which node ran the cycle, for how long, how it
ended, and the tail of its (masked) log. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from bot.report.headline import format_duration

STATE_LABELS = {
    "awaiting_approval": "waiting for a maintainer's /aac approve",
    "queued": "queued",
    "running": "running",
    "done": "finished",
    "timed_out": "timed out",
    "cancelled": "cancelled",
    "failed": "infrastructure error",
    "refused": "not run (fork)",
}


@dataclass(frozen=True, slots=True)
class RunnerSummary:
    """What the page shows of a cycle's runner job."""

    runner: str | None
    state: str
    attempts: int
    duration: float | None  # seconds from assignment to the end (or now)
    exit_code: int | None
    reason: str | None
    log_tail: str
    log_url: str


def render_runner_section(summary: RunnerSummary) -> str:
    """The section as HTML (escaped; the log is data the tests wrote)."""
    facts = [
        f"node <b>{escape(summary.runner or 'none yet')}</b>",
        escape(STATE_LABELS.get(summary.state, summary.state)),
    ]
    if summary.duration is not None:
        facts.append(f"took {escape(format_duration(summary.duration))}")
    if summary.exit_code is not None:
        facts.append(f"exit code {summary.exit_code}")
    if summary.attempts > 1:
        facts.append(f"attempt {summary.attempts}")
    reason = f"<p>{escape(summary.reason)}</p>" if summary.reason else ""
    tail = (
        f"<details open><summary>Log (last lines)</summary><pre>{escape(summary.log_tail)}</pre>"
        "</details>"
        if summary.log_tail
        else ""
    )
    return (
        '<h2>Testing node</h2><div class="card runner">'
        f"<p>{' · '.join(facts)}</p>{reason}{tail}"
        f'<p><a href="{escape(summary.log_url)}">Download the whole log</a></p></div>'
    )
