"""Signature normalisation: masking, frames per language, stable hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.analysis.signature import (
    example_message,
    failure_signature,
    failure_signatures,
    normalize_message,
    normalize_messages,
    own_frames,
    parse_frames,
    split_exception,
    top_frames,
)
from bot.results.model import TestCaseResult, TestStatus


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("expected 3 but got 4", "expected <n> but got <n>"),
        ("object at 0x7ffe12ab34", "object at <hex>"),
        ("commit deadbeef1234 missing", "commit <hex> missing"),
        ("id 123e4567-e89b-12d3-a456-426614174000 gone", "id <uuid> gone"),
        ("at 2024-01-02T03:04:05.123Z failed", "at <ts> failed"),
        ("at 12:34:56 failed", "at <ts> failed"),
        ("timed out after 30s", "timed out after <duration>"),
        ("took '150ms'", "took '<duration>'"),
        ("took 1.5 seconds", "took <duration>"),
        ("no file /tmp/pytest-of-bob/pytest-3/test_a0/x.txt", "no file <tmp>"),
        ("no file /var/folders/ab/cd/T/tmpxyz/f", "no file <tmp>"),
        ("no file /private/var/folders/ab/T/x", "no file <tmp>"),
        ("no file C:\\Users\\me\\AppData\\Local\\Temp\\abc\\f.txt", "no file <tmp>"),
        ("cannot open /home/ci/app/config.yml", "cannot open <path>"),
        ("cannot open C:\\src\\app\\config.yml", "cannot open <path>"),
        ("GET http://127.0.0.1:8080/x?y=1 failed", "GET <url> failed"),
        ("connect 10.0.0.7:5432 refused", "connect <n>:<n> refused"),
        ("Int32 overflow in utf8 codec", "Int32 overflow in utf8 codec"),
        ("  two   spaces\n\nsecond line", "two spaces"),
    ],
)
def test_normalize_message_masks_run_specific_details(raw: str, expected: str) -> None:
    assert normalize_message(raw) == expected


def test_normalize_messages_matches_one_by_one() -> None:
    messages = ["a 1", "", "b /tmp/x 2s", "multi\nline 3", "c 0xff"]
    assert normalize_messages(messages) == [normalize_message(m) for m in messages]


def test_normalize_message_is_bounded() -> None:
    assert len(normalize_message("x" * 100_000)) <= 300


@pytest.mark.parametrize(
    ("kind", "message", "expected"),
    [
        (None, "AssertionError: assert 3 == 4", ("AssertionError", "assert 3 == 4")),
        (
            "java.lang.AssertionError",
            "java.lang.AssertionError: x",
            ("java.lang.AssertionError", "x"),
        ),
        (
            "java.lang.IllegalStateException",
            "IllegalStateException: y",
            ("java.lang.IllegalStateException", "y"),
        ),
        ("ValueError", "ValueError", ("ValueError", "")),
        (None, "plain words", (None, "plain words")),
        (" Foo  bar", "msg", ("Foo", "msg")),
    ],
)
def test_split_exception(kind: str | None, message: str, expected: tuple[str | None, str]) -> None:
    assert split_exception(kind, message) == expected


PY_TRACE = """Traceback (most recent call last):
  File "/home/u/proj/tests/test_x.py", line 12, in test_foo
    foo()
  File "/home/u/proj/src/app/core.py", line 40, in foo
    raise ValueError("bad 12")
ValueError: bad 12"""

PYTEST_TRACE = """def test_x():
>       helper()

tests/test_x.py:3: in test_x
    helper()
src/app/mod.py:10: in helper
    assert 1 == 2
E   assert 1 == 2
src/app/mod.py:10: AssertionError"""

JAVA_TRACE = """java.lang.IllegalStateException: boom 42
\tat com.foo.Bar.baz(Bar.java:12)
\tat com.foo.Bar.lambda$run$0(Bar.java:20)
\tat org.junit.Assert.fail(Assert.java:88)
\tat com.foo.BarTest.testIt(BarTest.kt:33)"""

JS_TRACE = """Error: expected 1 to equal 2
    at Object.<anonymous> (/home/u/proj/src/foo.test.ts:10:15)
    at async run (/home/u/proj/node_modules/jest-circus/build/run.js:1:2)
    at /home/u/proj/src/bar.js:3:4"""

DOTNET_TRACE = """System.InvalidOperationException : nope
   at MyApp.Service.Do(Int32 x) in C:\\src\\MyApp\\Service.cs:line 42
   at MyApp.Tests.ServiceTests.<DoIt>b__0_1() in /src/Tests/ServiceTests.cs:line 17
   at System.RuntimeMethodHandle.InvokeMethod(Object target)"""

GO_TRACE = """panic: runtime error: index out of range [5] with length 3

goroutine 7 [running]:
example.com/app/pkg.Foo(0xc000010000, 0x3)
\t/home/u/app/pkg/foo.go:12 +0x1d
example.com/app/pkg.TestFoo(0xc0000a0000)
\t/home/u/app/pkg/foo_test.go:20 +0x25
testing.tRunner(0xc0000a0000, 0x5a1f48)
\t/usr/local/go/src/testing/testing.go:1439 +0x102"""

GO_TEST_OUTPUT = "    foo_test.go:20: expected 3, got 4"

RUBY_TRACE = """/home/u/app/lib/foo.rb:12:in `bar': undefined method `x' for nil (NoMethodError)
\tfrom /home/u/app/spec/foo_spec.rb:5:in `block (2 levels) in <top (required)>'"""


@pytest.mark.parametrize(
    ("trace", "first", "keys"),
    [
        (
            PY_TRACE,
            ("/home/u/proj/src/app/core.py", 40, "foo"),
            ("core.py:foo", "test_x.py:test_foo"),
        ),
        (
            PYTEST_TRACE,
            ("src/app/mod.py", 10, ""),
            ("mod.py:?", "mod.py:helper", "test_x.py:test_x"),
        ),
        (
            JAVA_TRACE,
            ("Bar.java", 12, "com.foo.Bar.baz"),
            (
                "Bar.java:com.foo.Bar.baz",
                "Bar.java:com.foo.Bar.lambda$run$<n>",
                "BarTest.kt:com.foo.BarTest.testIt",
            ),
        ),
        (
            JS_TRACE,
            ("/home/u/proj/src/foo.test.ts", 10, "Object.<anonymous>"),
            ("foo.test.ts:Object.<anonymous>", "bar.js:?"),
        ),
        (
            DOTNET_TRACE,
            ("C:\\src\\MyApp\\Service.cs", 42, "MyApp.Service.Do"),
            (
                "Service.cs:MyApp.Service.Do",
                "ServiceTests.cs:MyApp.Tests.ServiceTests.<DoIt>b__<n>",
            ),
        ),
        (
            GO_TRACE,
            ("/home/u/app/pkg/foo.go", 12, "example.com/app/pkg.Foo"),
            ("foo.go:example.com/app/pkg.Foo", "foo_test.go:example.com/app/pkg.TestFoo"),
        ),
        (GO_TEST_OUTPUT, ("foo_test.go", 20, ""), ("foo_test.go:?",)),
        (
            RUBY_TRACE,
            ("/home/u/app/lib/foo.rb", 12, "bar"),
            ("foo.rb:bar", "foo_spec.rb:block (2 levels) in <top (required)>"),
        ),
    ],
    ids=["python", "pytest", "java", "js", "dotnet", "go", "go-test", "ruby"],
)
def test_frames_per_language(
    trace: str, first: tuple[str, int, str], keys: tuple[str, ...]
) -> None:
    frames = parse_frames(trace)
    assert (frames[0].path, frames[0].line, frames[0].function) == first
    # Runner frames (junit, jest, testing.tRunner, reflection) are dropped from the keys.
    assert top_frames(frames) == keys[:3]


def test_no_frames_for_unknown_text() -> None:
    assert parse_frames("just some words") == []
    assert parse_frames(None) == []


def _failure(
    name: str, message: str, trace: str | None = None, kind: str | None = None
) -> TestCaseResult:
    return TestCaseResult(
        name=name, status=TestStatus.FAILED, message=message, stack_trace=trace, failure_type=kind
    )


def test_same_cause_different_details_share_a_signature() -> None:
    a = _failure("test_a", "timeout after 3.2s on 10.0.0.1", PY_TRACE.replace("line 40", "line 41"))
    b = _failure("test_b", "timeout after 5s on 10.0.0.9", PY_TRACE)
    assert failure_signature(a).digest == failure_signature(b).digest


def test_test_body_frame_is_ignored_when_deeper_frames_exist() -> None:
    trace_a = PY_TRACE
    trace_b = PY_TRACE.replace("test_foo", "test_bar")
    sig_a = failure_signature(_failure("test_foo", "bad", trace_a))
    sig_b = failure_signature(_failure("test_bar", "bad", trace_b))
    assert sig_a.digest == sig_b.digest
    assert sig_a.frames == ("core.py:foo",)


def test_different_causes_differ() -> None:
    a = failure_signature(_failure("t", "bad", PY_TRACE, "ValueError"))
    b = failure_signature(_failure("t", "bad", PY_TRACE, "KeyError"))
    c = failure_signature(_failure("t", "worse", PY_TRACE, "ValueError"))
    assert len({a.digest, b.digest, c.digest}) == 3


def test_digest_is_short_stable_hex() -> None:
    sig = failure_signature(_failure("t", "x 1", PY_TRACE))
    assert len(sig.digest) == 16
    int(sig.digest, 16)
    # Stable across processes: a fixed input has a fixed hash (blake2b, not hash()).
    assert failure_signature(_failure("t", "x 1", PY_TRACE)).digest == sig.digest


def test_message_taken_from_trace_when_missing() -> None:
    sig = failure_signature(_failure("t", "", PY_TRACE))
    assert sig.exception_type == "ValueError"
    assert sig.message == "bad <n>"
    pytest_sig = failure_signature(_failure("t", "", PYTEST_TRACE))
    assert pytest_sig.message == "assert <n> == <n>"


def test_batch_equals_single() -> None:
    results = [
        _failure("a", "x 1", PY_TRACE),
        _failure("b", "", JAVA_TRACE),
        _failure("c", "y", None, "E"),
    ]
    assert failure_signatures(results) == [failure_signature(r) for r in results]


# -- for people: the project's own frames and the real message (traces as CI prints them) --
TRACES = Path(__file__).parents[1] / "report" / "traces"
KOTLIN_TEST = "LoginViewModelTest.kt:rejectsEmptyPassword"


@pytest.mark.parametrize(
    ("trace", "name", "frames"),
    [
        ("python-traceback.txt", "test_create", ("api.py:create",)),  # not json/, not requests
        ("python-requests.txt", "test_push", ("client.py:push",)),  # the test itself: in its list
        ("pytest-long.txt", "test_total", ("models.py:total",)),
        ("pytest-assert-diff.txt", "test_totals", ("test_cart.py:14",)),
        ("surefire.txt", "placesOrder", ("Utils.java:check", "OrderService.java:place")),
        ("surefire-npe-in-main.txt", "createsInvoice", ("Utils.java:slug", "Invoice.java:<init>")),
        ("kotlin-junit4.txt", "rejectsEmptyPassword", (KOTLIN_TEST,)),  # the only own frame
        ("jest.txt", "saves", ("Button.test.tsx:toHaveTextContent",)),
        ("node-mocha.txt", "lists", ("serialize.js:serialize", "orders.js:listOrders")),
        ("go-panic.txt", "TestSum", ("calc.go:Sum",)),  # not vendor/
        ("go-test.txt", "TestAdd", ("calc_test.go:27",)),
        ("dotnet-xunit.txt", "Adds", ("Calculator.cs:Add",)),
    ],
)  # fmt: skip
def test_own_frames_skip_dependencies_stdlib_and_runners(
    trace: str, name: str, frames: tuple[str, ...]
) -> None:
    result = _failure(name, "boom", (TRACES / trace).read_text())
    assert own_frames(result) == frames


def test_own_frames_empty_when_only_library_code_is_on_the_stack() -> None:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.12/importlib/__init__.py", line 90, in import_module\n'
        '  File "<frozen importlib._bootstrap>", line 1387, in _gcd_import\n'
        '  File "/venv/lib/python3.12/site-packages/yaml/__init__.py", line 3, in <module>\n'
        "ImportError: cannot import name 'CLoader'\n"
    )
    assert own_frames(_failure("test_import", "", trace)) == ()
    assert failure_signature(_failure("test_import", "", trace)).frames  # the signature keeps them


def test_example_message_is_the_real_text_with_line_breaks() -> None:
    diff = (TRACES / "pytest-assert-diff.txt").read_text()
    result = _failure("test_totals", "", diff)
    assert example_message(result) == (
        "assert {'apple': 3, 'pear': 2} == {'apple': 3, 'pear': 3}\n"
        "\n"
        "  Omitting 1 identical items, use -vv to show\n"
        "  Differing items:\n"
        "  {'pear': 2} != {'pear': 3}\n"
        "  Use -v to get more diff"
    )
    # The signature still masks and keeps one line.
    assert (
        failure_signature(result).message
        == "assert {'apple': <n>, 'pear': <n>} == {'apple': <n>, 'pear': <n>}"
    )
    given = _failure("t", "AssertionError: expected 3\n  but got 4", None, "AssertionError")
    assert example_message(given) == "expected 3\n  but got 4"
