"""Golden files: every dialect's realistic sample parses to the committed JSON next to it.

Regenerate after an intended change with
`AAC_UPDATE_GOLDEN=1 .venv/bin/pytest tests/bot/results/test_result_goldens.py`,
then review the diff of the `*.expected.json` files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from bot.results.parse import parse_results

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = sorted(p for p in FIXTURES.iterdir() if not p.name.endswith(".expected.json"))
UPDATE = os.environ.get("AAC_UPDATE_GOLDEN") == "1"


def _as_json(path: Path) -> dict[str, Any]:
    with path.open("rb") as stream:
        parsed = parse_results(stream, filename=path.name)
    return {
        "format": parsed.format,
        "results": [dataclasses.asdict(r) for r in parsed.results],
        "suite_outputs": [dataclasses.asdict(s) for s in parsed.suite_outputs],
    }


def _golden(path: Path) -> Path:
    return path.with_name(path.name + ".expected.json")


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_matches_golden(sample: Path) -> None:
    actual = json.loads(json.dumps(_as_json(sample)))  # enums -> their string values
    golden = _golden(sample)
    if UPDATE:
        golden.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    assert golden.exists(), f"no golden for {sample.name}; run with AAC_UPDATE_GOLDEN=1"
    assert actual == json.loads(golden.read_text())


def test_every_golden_has_a_sample() -> None:
    goldens = {p.name for p in FIXTURES.glob("*.expected.json")}
    assert goldens == {_golden(p).name for p in SAMPLES}
