"""Processes starting together (``aac serve`` and its workers on a fresh install) create the
embedded key file once: every one of them ends with the same key, none fails."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

PROCESS = Path(__file__).with_name("key_file_process.py")
REPO = Path(__file__).parents[2]
PROCESSES = 4
ROUNDS = 40


def test_concurrent_processes_end_with_one_key(tmp_path: Path) -> None:
    start_at = time.time() + 3.0  # after every process has imported
    procs = [
        subprocess.Popen(
            [sys.executable, str(PROCESS), str(tmp_path), str(ROUNDS), str(start_at)],
            cwd=REPO,
            env={"PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    seen: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        for line in out.splitlines():
            index, fingerprint, created = line.split()
            seen[int(index)].append((fingerprint, created))
    assert sorted(seen) == list(range(ROUNDS))
    for index, answers in seen.items():
        fingerprints = {fingerprint for fingerprint, _ in answers}
        assert fingerprints != {"error"}, index
        assert len(fingerprints) == 1, (index, answers)
        assert [created for _, created in answers].count("1") == 1, (index, answers)
    # No temporary file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{i}.keys" for i in range(ROUNDS))
