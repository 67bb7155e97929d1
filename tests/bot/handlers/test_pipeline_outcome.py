"""How a finished pipeline's conclusion becomes its cycle's outcome."""

from __future__ import annotations

import pytest

from bot.cycles import OUTCOMES
from bot.handlers.pipeline import cycle_outcome


@pytest.mark.parametrize(
    ("conclusion", "outcome"),
    [
        ("success", "success"),
        ("cancelled", "cancelled"),
        ("timed_out", "timed_out"),  # GitHub: a job hit its timeout-minutes
        ("failure", "failure"),
        ("neutral", "failure"),
        ("action_required", "failure"),
        (None, "failure"),
    ],
)
def test_a_pipeline_conclusion_maps_to_a_cycle_outcome(
    conclusion: str | None, outcome: str
) -> None:
    assert cycle_outcome(conclusion) == outcome


def test_every_mapped_outcome_is_one_a_cycle_accepts() -> None:
    for conclusion in ("success", "cancelled", "timed_out", "failure"):
        assert cycle_outcome(conclusion) in OUTCOMES
