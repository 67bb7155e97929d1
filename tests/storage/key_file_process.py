"""One of several processes opening the embedded key files at the same moments.

Usage: python key_file_process.py DIRECTORY ROUNDS START_AT
Round i opens DIRECTORY/i.keys at START_AT + i * 0.05 (wall clock, shared by the processes),
creating it if absent, and prints "i fingerprint created" (or "i error ...").
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from storage.vault import load_or_create_key_file

STEP = 0.05


def main(directory: Path, rounds: int, start_at: float) -> None:
    for i in range(rounds):
        delay = start_at + i * STEP - time.time()
        if delay > 0:
            time.sleep(delay)
        try:
            keyring, created = load_or_create_key_file(directory / f"{i}.keys")
        except Exception as exc:
            print(f"{i} error {type(exc).__name__}", flush=True)
            continue
        print(f"{i} {keyring.signing_key().hex()[:16]} {int(created)}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
