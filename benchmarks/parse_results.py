"""Benchmark: our streaming result parser against junitparser on a large generated JUnit file.

Run as `.venv/bin/python benchmarks/parse_results.py [--cases N] [--failures N] [--repeat N]`.
Each measurement runs in its own subprocess so peak RSS belongs to one parser only; the best
of `--repeat` round-robin runs is reported (the machine is shared: the best run is the least
disturbed one).

The floor is our own secure push parser (`bot.results.xml_stream.secure_parser`, every
protection on) driven by a target whose callbacks do nothing: no lxml streaming parser can be
faster. Targets (issue 15): the API path (`parse_results`) at >= 75% of the floor's throughput
in the same run, and at most 64 MB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parent.parent
TARGET_FLOOR_SHARE = 0.75
TARGET_PEAK_MB = 64.0
MODES = ("ours-parse_results", "ours-iter_results", "junitparser", "lxml-floor", "libxml2-tree")


def generate(out: BinaryIO, *, cases: int, failures: int, seed: int = 1234) -> None:
    """Write a deterministic Surefire-like JUnit file: 100 cases per suite, failures spread
    evenly with 20-line stack traces and captured stdout/stderr, a quarter of the passing
    cases with a few lines of output, and suite-level output."""
    rnd = random.Random(seed)
    per_suite = 100
    suites = max(1, (cases + per_suite - 1) // per_suite)
    fail_every = max(1, cases // failures) if failures else 0
    out.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(
        f'<testsuites name="bench" tests="{cases}" failures="{failures}" errors="0" '
        f'time="1234.5">\n'.encode()
    )
    index = 0
    for s in range(suites):
        module = f"module{s:04d}"
        cls = f"com.example.service.{module}.FeatureTest{s:04d}"
        path = f"src/test/java/com/example/service/{module}/FeatureTest{s:04d}.java"
        count = min(per_suite, cases - index)
        out.write(
            f'  <testsuite name="{cls}" tests="{count}" failures="0" errors="0" skipped="0" '
            f'time="12.5" timestamp="2024-05-01T10:00:00" hostname="ci-runner-07">\n'.encode()
        )
        parts: list[str] = []
        for k in range(count):
            head = (
                f'    <testcase name="shouldHandleScenario_{index:06d}_withParameterisedInput'
                f'[variant-{k % 7}]" classname="{cls}" file="{path}" line="{20 + k * 7}" '
                f'time="{rnd.random() * 0.05:.3f}"'
            )
            if fail_every and index % fail_every == fail_every - 1:
                expected = f"expected: &lt;{index}&gt; but was: &lt;{index + 1}&gt;"
                frames = [f"org.opentest4j.AssertionFailedError: {expected}"] + [
                    f"\tat com.example.service.{module}.Helper{j:02d}.verifyStep{j:02d}"
                    f"(Helper{j:02d}.java:{100 + j})"
                    for j in range(19)
                ]
                stdout = "\n".join(
                    f"2024-05-01 10:00:{j:02d}.123 INFO  [main] c.e.s.{module}.Service - "
                    f"processing request {index}-{j} status=ok"
                    for j in range(20)
                )
                stderr = "\n".join(
                    f"WARN: retrying connection attempt {j} to db-{index % 13}.internal:5432"
                    for j in range(5)
                )
                parts.append(
                    f'{head}>\n      <failure message="{expected}" '
                    f'type="org.opentest4j.AssertionFailedError">{chr(10).join(frames)}</failure>\n'
                    f"      <system-out><![CDATA[{stdout}]]></system-out>\n"
                    f"      <system-err><![CDATA[{stderr}]]></system-err>\n    </testcase>\n"
                )
            elif index % 4 == 0:
                lines = "\n".join(
                    f"DEBUG c.e.s.{module}.Repo - query {j} took {j * 3} ms" for j in range(4)
                )
                parts.append(
                    f"{head}>\n      <system-out><![CDATA[{lines}]]></system-out>\n"
                    f"    </testcase>\n"
                )
            else:
                parts.append(head + "/>\n")
            index += 1
        out.write("".join(parts).encode())
        out.write(
            b"    <system-out><![CDATA[suite setup complete]]></system-out>\n  </testsuite>\n"
        )
    out.write(b"</testsuites>\n")


def _child(mode: str, path: str) -> None:
    """Measure one parser in this (fresh) process and print one JSON line."""
    if mode == "junitparser":
        import junitparser

        def run() -> int:
            cases = 0
            for suite in junitparser.JUnitXml.fromfile(path):
                for case in suite:
                    for result in case.result:
                        _ = result.message
                    cases += 1
            return cases

    elif mode == "lxml-floor":
        # The ceiling for any lxml streaming parser: our secure push parser, no-op callbacks.
        sys.path.insert(0, str(ROOT))
        from bot.results.xml_stream import FEED_BYTES, secure_parser

        class _Nop:
            def start(self, tag: str, attrib: dict[str, str]) -> None: ...
            def end(self, tag: str) -> None: ...
            def data(self, text: str) -> None: ...
            def doctype(self, *args: object) -> None: ...
            def close(self) -> None: ...

        def run() -> int:
            parser = secure_parser(_Nop())  # type: ignore[arg-type]
            with open(path, "rb") as stream:
                while chunk := stream.read(FEED_BYTES):
                    parser.feed(chunk)
            parser.close()
            return 0

    elif mode == "libxml2-tree":
        # No Python per element at all: libxml2 builds the whole tree in C, which is then
        # dropped. What the C parser alone costs on this machine, for scale.
        from lxml import etree

        def run() -> int:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
            with open(path, "rb") as stream:
                while chunk := stream.read(1024 * 1024):
                    parser.feed(chunk)
            parser.close()
            return 0

    else:
        sys.path.insert(0, str(ROOT))
        from bot.results.parse import iter_results, parse_results

        def run() -> int:
            with open(path, "rb") as stream:
                if mode == "ours-iter_results":
                    return sum(1 for _ in iter_results(stream, filename=path))
                return len(parse_results(stream, filename=path).results)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    cases = run()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    # VmHWM is this process image's peak; ru_maxrss would carry the parent's across exec.
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"cases": cases, "wall": wall, "cpu": cpu, "peak_mb": peak_kib / 1024}))


def _run_child(mode: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _measure(path: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Round-robin over the parsers so a burst of load on the shared machine hits all of them;
    keep each parser's fastest run and its highest peak RSS."""
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for mode in MODES:
            run = _run_child(mode, path)
            row = best.setdefault(mode, run)
            if run["wall"] < row["wall"]:
                row.update(wall=run["wall"], cpu=run["cpu"])
            row["peak_mb"] = max(row["peak_mb"], run["peak_mb"])
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--failures", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per parser (best reported)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0

    with tempfile.TemporaryDirectory(prefix="aac-bench-") as tmp:
        path = Path(tmp) / "TEST-bench.xml"
        with path.open("wb") as out:
            generate(out, cases=args.cases, failures=args.failures)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {args.cases} cases, {args.failures} failures, {size_mb:.1f} MB")
        rows = _measure(path, args.repeat)

    print(f"\n{'parser':<20} {'cases':>7} {'wall s':>7} {'MB/s':>7} {'cpu MB/s':>9} {'peak MB':>8}")
    for mode, row in rows.items():
        print(
            f"{mode:<20} {row['cases']:>7} {row['wall']:>7.3f} {size_mb / row['wall']:>7.1f} "
            f"{size_mb / row['cpu']:>9.1f} {row['peak_mb']:>8.1f}"
        )
    base = rows["junitparser"]
    floor = rows["lxml-floor"]
    tree = rows["libxml2-tree"]
    print(
        "\nlxml-floor: the same secure lxml push parser with no-op callbacks, i.e. the ceiling "
        f"for any lxml streaming parser here: {base['wall'] / floor['wall']:.2f}x junitparser"
    )
    print(
        "libxml2-tree: libxml2 building the whole tree in C, no Python per element (not "
        f"streaming; peak above): {base['wall'] / tree['wall']:.2f}x junitparser"
    )
    print(
        f"\ntargets: >= {TARGET_FLOOR_SHARE:.0%} of lxml-floor throughput, "
        f"<= {TARGET_PEAK_MB:.0f} MB peak"
    )
    for mode in MODES[:2]:
        row = rows[mode]
        wall_share = floor["wall"] / row["wall"]
        cpu_share = floor["cpu"] / row["cpu"]
        # On a shared machine one preempted floor run inflates the wall share; the verdict
        # takes the lower of the two, so noise can only make it stricter.
        verdict_speed = "PASS" if min(wall_share, cpu_share) >= TARGET_FLOOR_SHARE else "MISS"
        verdict_mem = "PASS" if row["peak_mb"] <= TARGET_PEAK_MB else "MISS"
        print(
            f"{mode:<20} {wall_share:4.0%} of floor wall ({cpu_share:4.0%} cpu) {verdict_speed}; "
            f"{base['wall'] / row['wall']:4.2f}x junitparser; "
            f"peak {row['peak_mb']:.1f} MB {verdict_mem}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
