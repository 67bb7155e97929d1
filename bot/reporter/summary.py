"""Read a cycle's JSON: is it final, did it fail, and how to say so in a few lines."""

from __future__ import annotations

from typing import Any

from providers.context import SCM_SOURCES

FINAL_STATUSES = frozenset({"done", "infra_error", "cancelled", "superseded"})
COUNT_KEYS = ("total", "passed", "failed", "errored", "skipped", "flaky")
SUMMARY_LINES = 20


def is_final(cycle: dict[str, Any]) -> bool:
    """True once the server will not change the cycle's status any more."""
    return cycle.get("status") in FINAL_STATUSES


def totals(cycle: dict[str, Any]) -> dict[str, int]:
    """The cycle's counts, missing or malformed ones as 0."""
    raw = cycle.get("totals")
    raw = raw if isinstance(raw, dict) else {}
    return {k: v if isinstance(v, int) else 0 for k in COUNT_KEYS for v in [raw.get(k)]}


def is_infra_error(cycle: dict[str, Any]) -> bool:
    """True when the tests never ran properly: status infra_error or the server's flag."""
    return cycle.get("status") == "infra_error" or cycle.get("infrastructure_error") is True


def is_timed_out(cycle: dict[str, Any]) -> bool:
    """True when the run was killed at its time limit (whatever it uploaded before)."""
    return cycle.get("outcome") == "timed_out"


def has_failures(cycle: dict[str, Any]) -> bool:
    """True when tests failed or errored, or the run broke down (infrastructure error,
    timeout: the tests that would have run after the kill are unknown)."""
    counts = totals(cycle)
    return is_infra_error(cycle) or is_timed_out(cycle) or counts["failed"] + counts["errored"] > 0


def format_counts(counts: dict[str, int]) -> str:
    """`120 tests: 115 passed, 3 failed, 1 errored, 1 skipped, 0 flaky`."""
    rest = ", ".join(f"{counts[k]} {k}" for k in COUNT_KEYS[1:])
    return f"{counts['total']} tests: {rest}"


def format_summary(cycle: dict[str, Any]) -> list[str]:
    """Lines for the end of a CI log: status, counts, report URL and the start of the summary."""
    lines = [f"cycle {cycle.get('id')} {cycle.get('status')}: {format_counts(totals(cycle))}"]
    if is_infra_error(cycle):
        lines.append("infrastructure error: the tests did not run (no results, failed outcome)")
    if is_timed_out(cycle):
        limit = cycle.get("timeout_seconds")
        after = f" after {limit} s" if isinstance(limit, int) else ""
        lines.append(f"timed out{after}: killed at its limit; results uploaded before it are kept")
    if cycle.get("report_url"):
        lines.append(f"report: {cycle['report_url']}")
    summary = cycle.get("summary")
    if isinstance(summary, str) and summary.strip():
        body = summary.strip().splitlines()
        lines.append("")
        lines.extend(body[:SUMMARY_LINES])
        if len(body) > SUMMARY_LINES:
            lines.append(f"... ({len(body) - SUMMARY_LINES} more lines in the report)")
    return lines


def awaits_publication(cycle: dict[str, Any]) -> bool:
    """True while an analysed cycle of an SCM source has no publication recorded yet (the
    publish job runs just after the analysis)."""
    published = cycle.get("published")
    return (
        cycle.get("status") in ("done", "infra_error")
        and cycle.get("source") in SCM_SOURCES
        and not (isinstance(published, dict) and published)
    )


def publication_note(cycle: dict[str, Any]) -> str | None:
    """A line saying what was not published and why (the server's reason); None when all was."""
    source = cycle.get("source")
    published = cycle.get("published")
    entries = (
        {k: v for k, v in published.items() if isinstance(v, dict)}
        if isinstance(published, dict)
        else {}
    )
    if not entries:
        if source not in SCM_SOURCES:
            scms = ", ".join(sorted(SCM_SOURCES))
            return (
                f"nothing was published: source {source!r} is no SCM the bot publishes to "
                f"({scms}); the report page has the results"
            )
        return "nothing was published yet: the server recorded no publication for this cycle"
    failed = [
        f"{entry.get('kind') or name}: {entry.get('reason') or 'no reason given'}"
        for name, entry in sorted(entries.items())
        if entry.get("succeeded") is not True
    ]
    if not failed:
        return None
    lead = (
        "nothing was published" if len(failed) == len(entries) else "not everything was published"
    )
    return f"{lead} to {source}: {'; '.join(failed)}"
