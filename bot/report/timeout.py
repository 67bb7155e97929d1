"""What the report of a run killed at its time limit says: its title and its note. Pure."""

from __future__ import annotations

from bot.report.model import TimedOut


def timeout_title(timed_out: TimedOut) -> str:
    """``Timed out after 600 s``, or ``Timed out`` when the limit is not known."""
    if timed_out.seconds is None:
        return "Timed out"
    return f"Timed out after {timed_out.seconds:,} s"


def timeout_note(timed_out: TimedOut, results: int) -> str:
    """Plain text: who stopped the run at which limit, and what became of its results."""
    limit = f" ({timed_out.seconds:,} s)" if timed_out.seconds is not None else ""
    if timed_out.by_node:
        who = f"The testing node killed the command at the suite's timeout{limit}."
    else:
        who = f"The pipeline reported that the run was stopped at its timeout{limit}."
    if results:
        kept = (
            f"The {results:,} test result{'s' if results != 1 else ''} uploaded before the "
            "kill were kept and are shown here; tests that had not run yet are missing."
        )
    else:
        kept = "No test results were uploaded before the kill, so no test outcome is known."
    return f"{who} {kept}"
