"""Benchmark: the LLM prompt builder against a naive "last 60,000 characters of the log" prompt.

Run as `.venv/bin/python benchmarks/analysis.py [--budget 8000] [--sizes 10,1000,10000]
[--counter estimate|tiktoken]`. For cycles of generated, realistic failures (several root
causes, stack traces, captured output, a CI log well over 60,000 characters) it reports the
prompt tokens we send vs the naive prompt (same counter), whether every cluster is represented,
how long building takes, how far the cheap token estimate is from tiktoken, and the time to
render a report of the largest cycle.
Targets (issue): <= 25% of the naive prompt's tokens with every cluster represented; rendering a
10,000-failure report < 1 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.analysis.model import FailureCluster  # noqa: E402
from bot.analysis.prompt import build_prompt, estimate_tokens  # noqa: E402
from bot.analysis.redact import Redactor  # noqa: E402
from bot.results.model import TestCaseResult, TestStatus  # noqa: E402

NAIVE_CHARS = 60_000
TARGET_RATIO = 0.25
TARGET_RENDER_SECONDS = 1.0

# ----------------------------------------------------------------------------------------------
# Realistic failures: a few root causes in several languages, each with its own stack and output


def _py_stack(rnd: random.Random, project: list[str], error: str) -> str:
    frames = ['  File "/venv/lib/python3.11/site-packages/_pytest/python.py", line 195, in call']
    frames += [
        '  File "/venv/lib/python3.11/site-packages/pluggy/_callers.py", '
        f"line {rnd.randint(30, 120)}, in _multicall\n    res = hook_impl.function(*args)"
        for _ in range(rnd.randint(3, 8))
    ]
    frames += project
    frames += [
        f'  File "/venv/lib/python3.11/site-packages/sqlalchemy/engine/base.py", line '
        f"{rnd.randint(100, 2000)}, in _execute_context\n    self.dialect.do_execute(cursor)"
        for _ in range(rnd.randint(2, 10))
    ]
    return "Traceback (most recent call last):\n" + "\n".join(frames) + "\n" + error


def _java_stack(rnd: random.Random, error: str) -> str:
    frames = [
        "\tat com.shop.orders.OrderService.total(OrderService.java:88)",
        "\tat com.shop.orders.OrderController.checkout(OrderController.java:41)",
    ]
    frames += [
        f"\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:"
        f"{rnd.randint(100, 900)})"
        for _ in range(rnd.randint(10, 30))
    ]
    frames += [f"\tat java.base/java.lang.Thread.run(Thread.java:{rnd.randint(800, 840)})"]
    frames += [f"\t... {rnd.randint(5, 60)} more"]
    return error + "\n" + "\n".join(frames)


def _js_stack(rnd: random.Random, error: str) -> str:
    frames = [
        "    at renderList (/app/src/components/List.tsx:27:18)",
        "    at Dashboard (/app/src/pages/Dashboard.tsx:55:9)",
    ]
    frames += [
        f"    at renderWithHooks (/app/node_modules/react-dom/cjs/react-dom.development.js:"
        f"{rnd.randint(10000, 20000)}:{rnd.randint(1, 40)})"
        for _ in range(rnd.randint(8, 20))
    ]
    return error + "\n" + "\n".join(frames)


def _noise(rnd: random.Random, lines: int) -> list[str]:
    words = ("request", "handled", "cache", "warm", "user", "session", "query", "retry", "job")
    return [
        f"2024-05-01T12:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}Z INFO "
        f"[{rnd.choice(['api', 'worker', 'db', 'web'])}] "
        + " ".join(rnd.choice(words) for _ in range(rnd.randint(5, 14)))
        + f" id={rnd.randint(1, 10**6)}"
        for _ in range(lines)
    ]


def _failure(rnd: random.Random, i: int) -> TestCaseResult:
    kind = rnd.choices(range(7), weights=[30, 25, 15, 10, 10, 6, 4])[0]
    port = rnd.randint(5000, 6000)
    if kind == 0:
        message = f"psycopg.OperationalError: connection to db-{i % 7}:{port} refused"
        failure_type = "psycopg.OperationalError"
        stack = _py_stack(
            rnd,
            [
                '  File "/repo/app/db.py", line 20, in connect\n    return pool.getconn()',
                '  File "/repo/tests/conftest.py", line 31, in db\n    conn = connect(dsn)',
            ],
            message,
        )
        error_lines = [f"ERROR db pool: connection refused (db-{i % 7}:{port})"]
        status = TestStatus.ERRORED
    elif kind == 1:
        got, want = rnd.randint(1, 999), rnd.randint(1, 999)
        message = f"AssertionError: assert {got} == {want}"
        failure_type = "AssertionError"
        stack = _py_stack(
            rnd,
            [
                '  File "/repo/tests/test_pricing.py", line 57, in test_total\n'
                f"    assert total(cart) == {want}",
                '  File "/repo/app/pricing.py", line 12, in total\n    return round(s, 2)',
            ],
            message,
        )
        error_lines = [f"WARN pricing: rounding mode HALF_EVEN applied to {got}"]
        status = TestStatus.FAILED
    elif kind == 2:
        message = f"TimeoutError: element #checkout-{rnd.randint(1, 40)} not visible after 30s"
        failure_type = "TimeoutError"
        stack = _py_stack(
            rnd,
            ['  File "/repo/e2e/pages/cart.py", line 88, in click_checkout\n    wait.until(vis)'],
            message,
        )
        error_lines = ["ERROR browser console: Failed to load resource: 502 Bad Gateway"]
        status = TestStatus.FAILED
    elif kind == 3:
        message = (
            'java.lang.NullPointerException: Cannot invoke "String.length()" because "name" is null'
        )
        failure_type = "java.lang.NullPointerException"
        stack = _java_stack(rnd, message)
        error_lines = ["ERROR c.s.o.OrderService - customer name missing for order"]
        status = TestStatus.ERRORED
    elif kind == 4:
        message = f"KeyError: 'user_id' in payload {rnd.randint(1, 10**5)}"
        failure_type = "KeyError"
        stack = _py_stack(
            rnd,
            ['  File "/repo/app/serializers.py", line 144, in to_internal\n    uid = d["user_id"]'],
            "KeyError: 'user_id'",
        )
        error_lines = ["ERROR serializer failed: missing field user_id"]
        status = TestStatus.FAILED
    elif kind == 5:
        message = "TypeError: Cannot read properties of undefined (reading 'map')"
        failure_type = "TypeError"
        stack = _js_stack(rnd, message)
        error_lines = ["console.error: The above error occurred in the <List> component"]
        status = TestStatus.FAILED
    else:
        message = "ModuleNotFoundError: No module named 'shop_plugins'"
        failure_type = "ModuleNotFoundError"
        stack = _py_stack(
            rnd,
            ['  File "/repo/app/plugins.py", line 3, in <module>\n    import shop_plugins'],
            message,
        )
        error_lines = ["ERROR: pip could not find a version that satisfies shop-plugins"]
        status = TestStatus.ERRORED
    stdout = _noise(rnd, rnd.randint(10, 30))
    stdout.insert(rnd.randint(0, len(stdout)), rnd.choice(error_lines))
    if rnd.random() < 0.05:
        stdout.append("DEBUG env GITHUB_TOKEN=ghp_" + "".join(rnd.choices("abcdef0123", k=36)))
    return TestCaseResult(
        name=f"test_case_{i}",
        classname=f"tests.module_{i % 97}",
        status=status,
        duration=rnd.random() * 3,
        message=message,
        failure_type=failure_type,
        stack_trace=stack,
        stdout_tail="\n".join(stdout)[-4000:],
        stderr_tail="\n".join(_noise(rnd, 5))[-2000:],
    )


def generate(failures: int, seed: int) -> tuple[list[TestCaseResult], str]:
    """Failing results plus a CI log (always well over 60,000 characters)."""
    rnd = random.Random(seed)
    results = [_failure(rnd, i) for i in range(failures)]
    log: list[str] = ["$ pip install -e .[test]", *_noise(rnd, 400), "$ pytest -n 4"]
    for r in results[:5000]:
        log.append(f"{r.classname}::{r.name} {r.status.value.upper()}")
        if rnd.random() < 0.2:
            log.extend(_noise(rnd, 3))
    log.extend(_noise(rnd, max(600, failures // 10)))
    log.append(f"=== {failures} failed in 812.33s ===")
    log.append("ERROR: Process completed with exit code 1.")
    return results, "\n".join(log)


# ----------------------------------------------------------------------------------------------


def _clusterer() -> tuple[str, Callable[[Sequence[TestCaseResult]], list[FailureCluster]]]:
    if importlib.util.find_spec("bot.analysis.clusters") is not None:
        from bot.analysis.clusters import cluster_failures

        return "bot.analysis.clusters.cluster_failures", cluster_failures
    return "local stand-in", _stand_in_clusters


def _stand_in_clusters(results: Sequence[TestCaseResult]) -> list[FailureCluster]:
    """Only used while the real clusterer does not exist: by exception type."""
    by_type: dict[str, FailureCluster] = {}
    for r in results:
        key = r.failure_type or "?"
        cluster = by_type.setdefault(key, FailureCluster(key, r.failure_type, key, []))
        cluster.tests.append(r)
    return sorted(by_type.values(), key=lambda c: -len(c.tests))


def _tiktoken_counter() -> Callable[[str], int] | None:
    """cl100k_base from the copy litellm bundles (no download), or None."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    bundled = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils/tokenizers"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))  # a script, not library code
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base")
    except Exception:
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def _render_time(results: list[TestCaseResult], clusters: list[FailureCluster]) -> str:
    try:
        from bot.report.check_run import render_check_run
        from bot.report.comment import render_comment
        from bot.report.model import build_report
        from providers.context import CiContext
    except ImportError:
        return "rendering: not available"
    ctx = CiContext(source="github", repository="shop/web", sha="a" * 40, pr=7, suite="unit")
    model = build_report(ctx, results, clusters, {}, None, None)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        render_comment(model)
        render_check_run(model)
        best = min(best, time.perf_counter() - started)
    verdict = "PASS" if best < TARGET_RENDER_SECONDS else "FAIL"
    return (
        f"rendering {len(results):,} failures (comment + check run): {best:.3f} s "
        f"(target < {TARGET_RENDER_SECONDS:.0f} s) {verdict}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=8000, help="prompt token budget")
    parser.add_argument("--sizes", default="10,1000,10000", help="failures per cycle")
    parser.add_argument("--counter", choices=["estimate", "tiktoken"], default="estimate")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    tiktoken_count = _tiktoken_counter()
    if args.counter == "tiktoken" and tiktoken_count is None:
        print("tiktoken with cl100k_base is not available", file=sys.stderr)
        return 2
    count = tiktoken_count if args.counter == "tiktoken" and tiktoken_count else estimate_tokens
    name, cluster_failures = _clusterer()
    print(f"clusterer: {name}; counter: {args.counter}; budget: {args.budget} tokens")
    print(
        f"{'failures':>9} {'clusters':>8} {'log chars':>10} {'ours':>6} {'naive':>7} {'ratio':>6} "
        f"{'all clusters':>12} {'build s':>8} {'est/tiktoken':>12}"
    )
    ok = True
    largest: tuple[list[TestCaseResult], list[FailureCluster]] | None = None
    redactor = Redactor(["org-webhook-secret-value"])
    for size in (int(s) for s in args.sizes.split(",")):
        results, log = generate(size, args.seed)
        clusters = cluster_failures(results)
        started = time.perf_counter()
        prompt = build_prompt(
            clusters, redactor=redactor, log_tail=log, token_budget=args.budget, count_tokens=count
        )
        build_seconds = time.perf_counter() - started
        naive = count(log[-NAIVE_CHARS:])
        ours = prompt.tokens
        text = prompt.system + prompt.user
        every = prompt.fits and all(c.signature in text for c in clusters)
        ratio = ours / naive
        accuracy = "-"
        if tiktoken_count is not None:
            accuracy = f"{estimate_tokens(text) / tiktoken_count(text):.2f}"
        ok &= every and ratio <= TARGET_RATIO
        print(
            f"{size:>9,} {len(clusters):>8,} {len(log):>10,} {ours:>6,} {naive:>7,} "
            f"{ratio:>6.1%} {'yes' if every else 'NO':>12} {build_seconds:>8.2f} {accuracy:>12}"
        )
        largest = (results, clusters)
    print(
        f"target: <= {TARGET_RATIO:.0%} of the naive prompt, every cluster represented: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    if largest is not None:
        print(_render_time(*largest))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
