"""Normalise a failure into a signature: exception type, masked message and top stack frames.

Two failures with the same root cause but different run-specific details (numbers, temp
dirs, addresses, timestamps, line numbers) get the same signature and so the same hash.
Stack frames are parsed for Python (tracebacks and pytest's long format), Java/Kotlin,
JS/TS, Go, .NET and Ruby; frames are kept innermost first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from bot.results.model import TestCaseResult

TOP_FRAMES = 3
MESSAGE_MAX_CHARS = 300
# Traces can be huge; frames that matter sit near one end, so only a window is scanned.
_SCAN_WINDOW = 16_384


class StackFrame(NamedTuple):
    """One parsed frame: the path as written in the trace, its line, and its function."""

    path: str
    line: int | None
    function: str


@dataclass(frozen=True, slots=True)
class Signature:
    """The normalised identity of a failure and its short stable hash (16 hex chars)."""

    exception_type: str | None
    message: str
    frames: tuple[str, ...]
    digest: str


# ---------------------------------------------------------------------------------------
# Message masking
# ---------------------------------------------------------------------------------------
# (gate, pattern, mask) in order; a pattern runs only if the line contains its gate
# substring, which keeps the common short message cheap.
_NUMBERISH = re.compile(
    r"(?P<hex>\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b)"
    r"|(?P<duration>(?<![\w.])\d+(?:\.\d+)?[ \t]?"
    r"(?:ns|us|µs|ms|s|secs?|seconds?|m|mins?|minutes?|h|hours?)\b)"
    r"|(?P<n>(?<!\w)[-+]?\d+(?:\.\d+)*(?:[eE][-+]?\d+)?)"
)
_MASKS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("://", re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>)\]]+"), "<url>"),
    (
        "-",
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (
        "-",
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?\b"
        ),
        "<ts>",
    ),
    (":", re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<ts>"),
    # Temp dirs before generic paths so they read as <tmp>, whatever follows them.
    (
        "/",
        re.compile(r"(?<![\w.])/(?:tmp|var/tmp|(?:private/)?var/folders)/[^\s'\"]*"),
        "<tmp>",
    ),
    ("\\", re.compile(r"\b[A-Za-z]:\\[^\s'\"]*?\\(?:Temp|tmp)\\[^\s'\"]*", re.I), "<tmp>"),
    ("\\", re.compile(r"\b[A-Za-z]:\\(?:[^\\\s'\"]+\\)*[^\\\s'\"]*"), "<path>"),
    ("/", re.compile(r"(?<![\w.>])(?:~|\.{1,2})?/(?:[\w.@+-]+/)+[\w.@+-]*"), "<path>"),
    ("0", re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<hex>"),
)
_DIGIT = re.compile(r"\d")


def _mask_number(match: re.Match[str]) -> str:
    return f"<{match.lastgroup}>"


_SPACES = re.compile(r"\s+")
_TYPE_PREFIX = re.compile(
    r"^\s*([A-Za-z_][\w.$]*(?:Error|Exception|Failure|Exit|Interrupt|Timeout|Fault|Panic))"
    r"(?::\s*|\s*$)"
)


def _first_line(message: str) -> str:
    line = next((ln for ln in message[:8192].splitlines() if ln.strip()), "")
    return line[: MESSAGE_MAX_CHARS * 4]  # bound the regex work on absurd lines


def _mask_lines(text: str) -> str:
    # No pattern matches across "\n", so many lines can be masked in one pass.
    for gate, pattern, mask in _MASKS:
        if gate in text:
            text = pattern.sub(mask, text)
    if _DIGIT.search(text):
        text = _NUMBERISH.sub(_mask_number, text)
    return text


def _tidy(line: str) -> str:
    return _SPACES.sub(" ", line).strip()[:MESSAGE_MAX_CHARS]


def normalize_message(message: str) -> str:
    """Mask run-specific details in the first non-empty line of ``message``."""
    return _tidy(_mask_lines(_first_line(message)))


def normalize_messages(messages: Sequence[str]) -> list[str]:
    """``normalize_message`` over many messages, in a few regex passes instead of many."""
    lines = [_first_line(m) for m in messages]
    masked = _mask_lines("\n".join(lines)).split("\n")
    if len(masked) != len(lines):  # cannot happen with the patterns above; stay correct anyway
        masked = [_mask_lines(line) for line in lines]
    return [_tidy(line) for line in masked]


def split_exception(failure_type: str | None, message: str | None) -> tuple[str | None, str]:
    """Return (exception type, message without a repeated ``Type:`` prefix)."""
    text = (message or "").strip()
    kind = (failure_type or "").strip().split()[0] if (failure_type or "").strip() else None
    if kind is not None:
        for prefix in (kind, kind.rsplit(".", 1)[-1]):
            if text.startswith(prefix + ":"):
                return kind, text[len(prefix) + 1 :].strip()
            if text == prefix:
                return kind, ""
        return kind, text
    match = _TYPE_PREFIX.match(text)
    if match:
        return match.group(1), text[match.end() :].strip()
    return None, text


# ---------------------------------------------------------------------------------------
# Stack frames, one parser per trace dialect
# ---------------------------------------------------------------------------------------
_PY_FRAME = re.compile(
    r'^[ \t]*File "(?P<path>[^"\n]+)", line (?P<line>\d+), in (?P<func>\S+)', re.M
)
_PYTEST_FRAME = re.compile(
    r"^(?P<path>[^\s:][^:\n]*\.py):(?P<line>\d+): (?:in (?P<func>\S+)|[\w.]+)\s*$", re.M
)
_JAVA_FRAME = re.compile(
    r"at (?P<func>[\w$.<>/-]+)\((?P<path>[\w$.-]+\.(?:java|kt|kts|scala|groovy|clj))"
    r"(?::(?P<line>\d+))?\)"
)
_JS_FRAME = re.compile(
    r"^[ \t]*at (?:(?P<func>[^\n(]+?) \()?(?P<path>[^\s()]+?):(?P<line>\d+):\d+\)?[ \t]*$", re.M
)
_DOTNET_FRAME = re.compile(
    r"^[ \t]*at (?P<func>[^\n(]+)\([^\n)]*\)(?: in (?P<path>[^\n]+?):line (?P<line>\d+))?[ \t]*$",
    re.M,
)
_GO_FRAME = re.compile(
    r"^(?P<func>[\w./*()-]+)\([^\n]*\)\n[ \t]+(?P<path>[^\s:]+\.go):(?P<line>\d+)", re.M
)
_GO_TEST_LINE = re.compile(r"^[ \t]+(?P<path>[\w./-]+_test\.go):(?P<line>\d+):(?P<func>)", re.M)
_RUBY_FRAME = re.compile(
    r"^[ \t]*(?:from |# )?(?P<path>[^\s:]+\.rb):(?P<line>\d+):in [`'](?P<func>[^'\n]+)'", re.M
)

# A frame as the regex found it: (path, line digits or "", function or "").
_Raw = tuple[str, str, str]
_Parser = Callable[[str], list[_Raw]]


def _frames(pattern: re.Pattern[str], text: str, limit: int) -> list[_Raw]:
    # Every frame pattern has exactly the named groups path, line and func (func may be
    # empty); findall returns them in group-number order.
    order = pattern.groupindex
    ip, il, iff = order["path"] - 1, order["line"] - 1, order["func"] - 1
    found = pattern.findall(text)
    if (ip, il, iff) != (0, 1, 2):
        found = [(g[ip], g[il], g[iff]) for g in found]
    return found[:limit]


def _outermost_first(pattern: re.Pattern[str], trace: str) -> list[_Raw]:
    # Python prints the innermost frame last, so scan the tail and reverse.
    return _frames(pattern, trace[-_SCAN_WINDOW:], 10_000)[::-1]


def _innermost_first(pattern: re.Pattern[str], trace: str) -> list[_Raw]:
    return _frames(pattern, trace[:_SCAN_WINDOW], 64)


def _go(trace: str) -> list[_Raw]:
    frames = _innermost_first(_GO_FRAME, trace)
    if frames:
        return frames
    # `go test` assertion output names only file:line, no function.
    return _innermost_first(_GO_TEST_LINE, trace)


# (cheap substring gate, parser): the gate skips regex work on traces of other languages.
_PARSERS: tuple[tuple[str, _Parser], ...] = (
    ('File "', lambda t: _outermost_first(_PY_FRAME, t)),
    (".py:", lambda t: _outermost_first(_PYTEST_FRAME, t)),
    ("at ", lambda t: _innermost_first(_JAVA_FRAME, t)),
    ("at ", lambda t: _innermost_first(_JS_FRAME, t)),
    ("at ", lambda t: _innermost_first(_DOTNET_FRAME, t)),
    (".go:", _go),
    (".rb:", lambda t: _innermost_first(_RUBY_FRAME, t)),
)


@lru_cache(maxsize=1024)
def _raw_frames(trace: str | None) -> tuple[_Raw, ...]:
    # Cached: renderers locate the same tests' frames several times.
    if not trace:
        return ()
    if len(trace) > 2 * _SCAN_WINDOW:
        # Parsers only look at the head or the tail; gates must not scan megabytes either.
        trace = trace[:_SCAN_WINDOW] + "\n" + trace[-_SCAN_WINDOW:]
    for gate, parser in _PARSERS:
        if gate in trace:
            frames = parser(trace)
            if frames:
                return tuple(frames)
    return ()


def parse_frames(trace: str | None) -> list[StackFrame]:
    """Parse the frames of a stack trace, innermost first; empty when none is recognised."""
    return [
        StackFrame(path.strip(), int(line) if line else None, _clean_function(func))
        for path, line, func in _raw_frames(trace)
    ]


def _clean_function(func: str) -> str:
    return func.strip().removeprefix("async ")


# Frames of test runners and assertion libraries say nothing about the root cause.
_FRAMEWORK = re.compile(
    r"(?:_pytest[/\\]|pluggy[/\\]|unittest[/\\]case\.py|^org\.junit\.|^junit\.framework\."
    r"|^org\.assertj\.|^org\.hamcrest\.|^org\.testng\.|^org\.opentest4j\.|^kotlin\.test\."
    r"|^(?:java\.base/)?(?:jdk\.internal|sun\.reflect|java\.lang\.reflect)\."
    r"|^node:internal|node_modules[/\\]@?(?:jest|mocha|chai|expect|vitest)[\w-]*[/\\]"
    r"|^testing\.tRunner|^runtime\.goexit|^NUnit\.Framework|^Xunit\.|^Microsoft\.VisualStudio\."
    r"|^System\.(?:RuntimeMethodHandle|Reflection)|rspec-|minitest)"
)
_GENERATED_NAME = re.compile(r"(\$|\bfunc|__)\d+(?:_\d+)?")


@lru_cache(maxsize=16_384)
def _frame_info(path: str, function: str) -> tuple[bool, str, str]:
    # (is a test-runner frame, "basename:function" key, bare function name); frames repeat
    # across tests, so this is cached.
    path, function = path.strip(), _clean_function(function)
    framework = bool(_FRAMEWORK.search(path) or _FRAMEWORK.search(function))
    base = path.replace("\\", "/").rsplit("/", 1)[-1] if path else "?"
    func = _GENERATED_NAME.sub(r"\1<n>", function) if function else "?"
    bare = function.replace(":", ".").rsplit(".", 1)[-1]
    return framework, f"{base}:{func}", bare


def _test_function(test_name: str) -> str:
    # "test_x[param]" and "test_x(arg)" run the function test_x.
    return test_name.split("[", 1)[0].split("(", 1)[0].strip()


def top_frames(
    frames: Sequence[tuple[str, object, str]], count: int = TOP_FRAMES, test_name: str = ""
) -> tuple[str, ...]:
    """The ``count`` innermost frames as ``basename:function`` keys.

    Test-runner frames are dropped, and so is the test's own function when deeper frames
    exist: the same root cause hit from many tests must give one signature.
    """
    infos = [_frame_info(f[0], f[2]) for f in frames]
    own = [i for i in infos if not i[0]] or infos
    test_func = _test_function(test_name)
    deeper = [i for i in own if i[2] != test_func] if test_func else own
    return tuple(i[1] for i in (deeper or own)[:count])


# ---------------------------------------------------------------------------------------
# The signature
# ---------------------------------------------------------------------------------------
def signature_digest(exception_type: str | None, message: str, frames: tuple[str, ...]) -> str:
    """Stable 16-hex-char hash of the normalised parts."""
    joined = "\x1f".join((exception_type or "", message, *frames))
    return hashlib.blake2b(joined.encode("utf-8", "replace"), digest_size=8).hexdigest()


_PYTEST_E_LINE = re.compile(r"^E +(\S.*)$", re.M)


def _message_from_trace(trace: str) -> str:
    # No message attribute: the trace's own "Type: message" line is the next best thing.
    window = trace[:_SCAN_WINDOW]
    match = _PYTEST_E_LINE.search(window)
    if match:
        # pytest prints a multi-line message (an assertion diff) as consecutive "E" lines.
        indent = match.start(1) - match.start(0)
        lines = [match.group(1)]
        for line in window[match.end() + 1 :].split("\n"):
            if line.rstrip() != "E" and not line.startswith("E "):
                break
            body = line[1:].rstrip()
            pad = len(body) - len(body.lstrip(" "))
            lines.append(body[min(pad, indent - 1) :])
        return "\n".join(lines)
    lines = [ln for ln in trace.strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith("Traceback"):
        # Python prints the exception after its frames.
        return lines[-1]
    return lines[0] if lines else ""


def _kind_and_text(result: TestCaseResult) -> tuple[str | None, str]:
    kind, text = split_exception(result.failure_type, result.message)
    if not text and result.stack_trace:
        trace_kind, text = split_exception(None, _message_from_trace(result.stack_trace))
        kind = kind or trace_kind
    return kind, text


def failure_signatures(results: Sequence[TestCaseResult]) -> list[Signature]:
    """Signatures of many failing results at once (messages are masked in bulk)."""
    parts = [_kind_and_text(r) for r in results]
    masked = normalize_messages([text for _, text in parts])
    frames_by_trace: dict[str | None, tuple[_Raw, ...]] = {}
    out: list[Signature] = []
    for result, (kind, _), message in zip(results, parts, masked, strict=True):
        trace = result.stack_trace
        frames = frames_by_trace.get(trace)
        if frames is None:
            # Bypass the LRU cache: it would only churn on thousands of distinct traces.
            frames = frames_by_trace[trace] = _raw_frames.__wrapped__(trace)
        top = top_frames(frames, TOP_FRAMES, result.name)
        out.append(Signature(kind, message, top, signature_digest(kind, message, top)))
    return out


def failure_signature(result: TestCaseResult) -> Signature:
    """The normalised signature of one failing test result."""
    return failure_signatures([result])[0]


# ---------------------------------------------------------------------------------------
# The project's own code, for people: where a failure happened, and what it said
# ---------------------------------------------------------------------------------------
# Dependencies, toolchains, standard libraries and runtimes, by path: installed, vendored,
# or in a CI runner's tool cache.
_LIBRARY_PATH = re.compile(
    r"(?:^|/)(?:site-packages|dist-packages|node_modules|\.venv|venv|vendor|third[_-]party|"
    r"\.tox|\.nox|\.cargo|\.m2|\.gradle|\.nuget|go/pkg/mod|hostedtoolcache|rustc|gems|"
    r"lib/python\d[\d.]*|python\d+/lib|lib/ruby|usr/(?:local/)?(?:lib|go|share)|"
    r"go\d[\d.]*/src|_/src/libraries|program files(?: \(x86\))?)(?:/|$)"
    r"|^<|^node:",  # <frozen ...>, <string>, node:internal/...
    re.IGNORECASE,
)
# The same by qualified function name, for languages whose traces name only a file's base
# name (JVM) or a method (.NET without symbols).
_LIBRARY_FUNCTION = re.compile(
    r"^(?:[\w.-]+/)*(?:java|javax|jdk|sun|com\.sun|kotlin|kotlinx|scala|groovy|"
    r"org\.(?:junit|gradle|apache|springframework|hibernate|mockito|jetbrains|codehaus)|"
    r"com\.google|com\.fasterxml|io\.netty|net\.bytebuddy|reactor|okhttp3|"
    r"System|Microsoft|Xunit|NUnit|Moq|Castle|testing|runtime|reflect)\."
)


def is_library(path: str) -> bool:
    """Whether ``path`` lies in dependencies, a toolchain or the system, not the project."""
    return bool(_LIBRARY_PATH.search(path.replace("\\", "/")))


def _is_own(frame: StackFrame) -> bool:
    if is_library(frame.path) or _LIBRARY_FUNCTION.match(frame.function):
        return False
    return not _frame_info(frame.path, frame.function)[0]  # nor a test runner's frame


def _display_key(frame: StackFrame) -> str:
    base = frame.path.replace("\\", "/").rsplit("/", 1)[-1] or "?"
    # "com.example.Orders.place" reads as Orders.java:place; "Promise.then.completed" too.
    func = frame.function.rsplit("/", 1)[-1].replace(":", ".").rsplit(".", 1)[-1]
    if func:
        return f"{base}:{func}"
    return f"{base}:{frame.line}" if frame.line is not None else base  # `go test` output


def own_frames(result: TestCaseResult, count: int = 2) -> tuple[str, ...]:
    """The innermost frames of the project's own code in the result's trace, as
    ``basename:function``; the test's own function only when nothing deeper is the project's.
    Empty when no frame is the project's (say, a failure inside a dependency at import)."""
    own = [f for f in parse_frames(result.stack_trace) if _is_own(f)]
    test_func = _test_function(result.name)
    deeper = [f for f in own if f.function.rsplit(".", 1)[-1] != test_func] or own
    keys: list[str] = []
    for frame in deeper:
        key = _display_key(frame)
        if key not in keys:  # recursion would repeat a frame
            keys.append(key)
    return tuple(keys[:count])


def example_message(result: TestCaseResult) -> str:
    """What the failure said, as the test printed it (line breaks kept), without a repeated
    exception type; taken from the trace when the result carries no message."""
    return _kind_and_text(result)[1].strip("\n")
