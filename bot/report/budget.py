"""Degrade a rendering in steps until it fits its byte budget.

Each level shows less: first the passed list goes, then details collapse, then only the
top clusters stay, traces shrink and vanish, and last only the headline and a link remain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.report.markdown import truncate_bytes, utf8_len


@dataclass(frozen=True, slots=True)
class Plan:
    """How much of the model one rendering attempt shows."""

    passed_list: int  # passed test ids listed (0: none)
    clusters: int  # root causes shown
    tests_per_cluster: int
    traces: int  # clusters that show a representative trace
    trace_lines: int
    trace_bytes: int
    list_items: int  # items per flaky / delta list
    explanations: bool  # per-cluster LLM explanations
    summary_bytes: int  # LLM summary
    message_chars: int  # one-line messages
    message_lines: int  # a failure's multi-line message (say, an assertion diff), in a fence
    message_bytes: int


LEVELS: tuple[Plan, ...] = (
    Plan(500, 50, 25, 50, 80, 8_000, 50, True, 8_000, 300, 40, 4_000),
    Plan(0, 50, 25, 50, 80, 8_000, 50, True, 8_000, 300, 40, 4_000),
    Plan(0, 30, 10, 10, 30, 3_000, 20, True, 4_000, 200, 20, 2_000),
    Plan(0, 10, 5, 3, 15, 1_500, 10, True, 2_000, 160, 12, 1_000),
    Plan(0, 5, 3, 0, 0, 0, 5, False, 1_000, 120, 6, 500),
    Plan(0, 0, 0, 0, 0, 0, 0, False, 0, 80, 0, 0),
)


def fit(render: Callable[[Plan], str], budget_bytes: int, minimal: Callable[[], str]) -> str:
    """The richest rendering within ``budget_bytes``; ``minimal`` must hold no fence/details."""
    for plan in LEVELS:
        text = render(plan)
        if utf8_len(text) <= budget_bytes:
            return text
    # Only pathological inputs (e.g. a huge repository name) get here; plain text is safe
    # to cut anywhere.
    return truncate_bytes(minimal(), budget_bytes)
