"""JUnit XML in its common dialects: pytest, jest-junit, go-junit-report, Playwright, Gradle,
Maven Surefire (with flaky and rerun elements), nested suites, suite-level output, disabled
tests (`<disabled/>`, `status="disabled"`, googletest's `status="notrun"`), and suites that
give only their counts (`tests`, `failures`, `errors`, `skipped`) and list no test case.

Hot path: a passing `<testcase/>` without children costs a few dict reads and one constructor
call; everything else takes the slower path in `_with_children`.
"""

from __future__ import annotations

from bot.results.capture import MAX_CAPTURED_NODES, CaptureTarget, Node
from bot.results.limits import ParseLimits
from bot.results.model import TestCaseResult, TestStatus
from bot.results.parsed import SuiteOutput
from bot.results.text import attr_dict, attr_text, message_of

# Child kinds of <testcase>.
_FAILURE, _ERROR, _SKIPPED, _OUT, _ERR = range(5)
_FLAKY_FAILURE, _FLAKY_ERROR, _RERUN_FAILURE, _RERUN_ERROR = range(5, 9)
_CHILD_KINDS = {
    "failure": _FAILURE,
    "error": _ERROR,
    "skipped": _SKIPPED,
    "disabled": _SKIPPED,
    "system-out": _OUT,
    "system-err": _ERR,
    "flakyFailure": _FLAKY_FAILURE,
    "flakyError": _FLAKY_ERROR,
    "rerunFailure": _RERUN_FAILURE,
    "rerunError": _RERUN_ERROR,
}
_CACHE_MAX = 8_192  # distinct time strings remembered (they repeat a lot)
_PASSED = TestStatus.PASSED
_NOT_RUN = frozenset({"disabled", "notrun"})  # `status` values of tests that never ran
COUNTED_MESSAGE = "counted from the <testsuite> attributes: the file lists no test cases"
_COUNTS = (
    ("failures", TestStatus.FAILED),
    ("errors", TestStatus.ERRORED),
    ("skipped", TestStatus.SKIPPED),
)


def parse_duration(value: str) -> float:
    """Seconds from a `time` attribute; tolerant of "1,234.5" and decimal commas."""
    try:
        return float(value)
    except ValueError:
        cleaned = value.replace(",", "") if "." in value else value.replace(",", ".")
        try:
            return float(cleaned)
        except ValueError:
            return 0.0


def _count(value: str | None) -> int:
    """A count attribute; 0 when absent or not a plain non-negative number."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 9:
        return 0
    return int(value)


def _line(value: str, offset: int) -> int | None:
    try:
        number = int(value) + offset
    except ValueError:
        return None
    return number if number > 0 else None


class _Suite:
    """An open <testsuite> (or the <testsuites> root): name, file and pending output."""

    __slots__ = ("attrib", "err", "file", "first", "line_offset", "lines", "name", "nested", "out")

    def __init__(
        self, name: str, file: str, line_offset: int, lines: dict[str, int | None]
    ) -> None:
        self.name = name
        self.file = file
        self.line_offset = line_offset
        self.lines = lines  # `line` attribute -> line number, shared by suites of one offset
        self.out: list[Node] = []
        self.err: list[Node] = []
        self.attrib: dict[str, str] | None = None  # a <testsuite>'s own, for its counts
        self.first = 0  # results emitted before it opened: none since means no <testcase>
        self.nested = False  # has it child suites (then its counts are theirs)?


class JUnitTarget(CaptureTarget):
    """Parser target for JUnit XML; `namespace` is the root's (normally "").

    It overrides the generic capture so that a `<testcase>` itself never becomes a Node:
    only its children do, and most test cases have none.
    """

    def __init__(
        self,
        *,
        namespace: str,
        filename: str,
        limits: ParseLimits,
        suite_outputs: list[SuiteOutput] | None,
    ) -> None:
        super().__init__(filename=filename, limits=limits, suite_outputs=suite_outputs)
        ns = f"{{{namespace}}}" if namespace else ""
        self._testcase = ns + "testcase"
        self._suite_tags = (ns + "testsuite", ns + "testsuites")
        self._out_tag = ns + "system-out"
        self._err_tag = ns + "system-err"
        self._stack_trace = ns + "stackTrace"
        self._kinds = {ns + local: kind for local, kind in _CHILD_KINDS.items()}
        self._shared: dict[str, str] = {}  # one str object per distinct classname / file
        self._durations: dict[str, float] = {}
        self._line_caches: tuple[dict[str, int | None], dict[str, int | None]] = ({}, {})
        # Test cases outside any <testsuite> (never seen in practice) get this one.
        self._suite = self._top = _Suite("", "", 0, self._line_caches[0])
        self._suites: list[_Suite] = []
        self._max_cases = limits.max_test_cases
        self._case: dict[str, str] | None = None  # attributes of the open <testcase>
        self._children: list[Node] | None = None  # its child elements so far
        self._verdict = False  # has it a child other than output / properties?
        self._verdict_tags = frozenset(
            tag for tag, kind in self._kinds.items() if kind not in (_OUT, _ERR)
        )

    # lxml target protocol (hot) -----------------------------------------------------------
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        stack = self._stack
        if self._case is None:
            if stack:  # markup nested in suite-level output
                if self._runs:
                    self.give_text(stack[-1])
                stack.append(None)
            elif tag == self._testcase:
                self._case = attrib  # per-case state is reset in `end`, only when it was used
            elif tag == self._out_tag or tag == self._err_tag:
                self._runs.clear()
                stack.append(Node(tag, attr_dict(attrib)))
            else:
                self.outer_start(tag, attr_dict(attrib))
            return
        self._nodes += 1
        if stack:
            parent = stack[-1]
            if self._runs:
                self.give_text(parent)
            if parent is None or self._nodes > MAX_CAPTURED_NODES:
                stack.append(None)
                return
            node = Node(tag, attr_dict(attrib))
            if parent.children is None:
                parent.children = [node]
            else:
                parent.children.append(node)
        else:
            self._runs.clear()  # whitespace between a test case's children
            if self._nodes > MAX_CAPTURED_NODES:
                stack.append(None)
                return
            node = Node(tag, attr_dict(attrib))
            if self._children is None:
                self._children = [node]
            else:
                self._children.append(node)
            if tag in self._verdict_tags:
                self._verdict = True
        stack.append(node)

    def end(self, tag: str) -> None:
        stack = self._stack
        if stack:
            node = stack.pop()
            if self._runs:
                self.give_text(node)
            if not stack and self._case is None and node is not None:
                suite = self._suite  # suite-level <system-out> / <system-err> complete
                (suite.out if node.tag == self._out_tag else suite.err).append(node)
            return
        attrib = self._case
        if attrib is None:
            self.outer_end(tag)
            return
        # </testcase>: the hot path, once per test case, hence inlined and terse.
        self._case = None
        get = attrib.get
        suite = self._suite
        shared = self._shared
        name = get("name", "")
        if "&" in name:
            name = attr_text(name)
        classname = get("classname", "")
        if "&" in classname:
            classname = attr_text(classname)
        classname = shared.setdefault(classname, classname)
        file = get("file") or suite.file or None
        if file is not None:
            file = shared.get(file) or shared.setdefault(file, attr_text(file))
        value = get("line")
        if value is None:
            line = None
        else:
            lines = suite.lines
            line = lines.get(value, -1)
            if line == -1:
                line = _line(value, suite.line_offset)
                if len(lines) < _CACHE_MAX:
                    lines[value] = line
        value = get("time")
        if value is None:
            duration = 0.0
        else:
            durations = self._durations
            duration = durations.get(value, -1.0)
            if duration == -1.0:
                duration = parse_duration(value)
                if len(durations) < _CACHE_MAX:
                    durations[value] = duration
        result = TestCaseResult(name, classname, suite.name, file, line, _PASSED, duration)
        children = self._children
        if children is not None:
            if self._verdict:  # a failure, error, skip or rerun: not a plain pass
                self._with_children(result, children)
            self._children = None
            self._verdict = False
            self._nodes = 0
        value = get("status")
        if value is not None and value in _NOT_RUN and result.status is _PASSED:
            result.status = TestStatus.SKIPPED
        # `emit`, inlined.
        self.count += 1
        if self.count > self._max_cases:
            self.emit(result)  # raises with the proper message
        self.ready.append(result)

    # suites --------------------------------------------------------------------------------
    def outer_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag in self._suite_tags:
            name = attrib.get("name", "")
            parent = self._suites[-1] if self._suites else None
            # pytest writes 0-based `line`s; recognise its default suite and root names.
            pytest = name in ("pytest", "pytest tests") or (
                parent is not None and parent.line_offset == 1
            )
            file = attrib.get("file") or (parent.file if parent else "")
            offset = 1 if pytest else 0
            suite = _Suite(self._intern(name), file, offset, self._line_caches[offset])
            if tag == self._suite_tags[0]:
                suite.attrib, suite.first = attrib, self.count
            if parent is not None:
                parent.nested = True
            self._suites.append(suite)
            self._suite = suite

    def outer_end(self, tag: str) -> None:
        if tag in self._suite_tags and self._suites:
            suite = self._suites.pop()
            self._suite = self._suites[-1] if self._suites else self._top
            if suite.attrib is not None and not suite.nested and self.count == suite.first:
                self._count_from_attributes(suite, suite.attrib)
            self._flush_output(suite)

    def _count_from_attributes(self, suite: _Suite, attrib: dict[str, str]) -> None:
        """A suite that lists no test case but says how many it ran: one result per counted
        test, marked `counted`, so totals are right and nothing pretends to know more."""
        numbers = [(status, _count(attrib.get(key))) for key, status in _COUNTS]
        listed = sum(n for _, n in numbers)
        total = max(_count(attrib.get("tests")), listed)
        if total == 0:
            return
        self.reserve(total)  # refuses absurd counts before building anything
        numbers.append((_PASSED, total - listed))
        for status, n in numbers:
            message = None if status is _PASSED else COUNTED_MESSAGE
            for i in range(1, n + 1):
                self.ready.append(
                    TestCaseResult(
                        name=f"[{status.value} {i} of {n}]",
                        classname=suite.name,
                        suite=suite.name,
                        status=status,
                        message=message,
                        counted=True,
                    )
                )
        self.counted += total

    def finish(self) -> None:
        self._flush_output(self._top)

    def _flush_output(self, suite: _Suite) -> None:
        if (suite.out or suite.err) and self.suite_outputs is not None:
            keep = self.limits.max_output_tail_chars
            self.suite_outputs.append(
                SuiteOutput(
                    suite.name, _joined_tail(suite.out, keep), _joined_tail(suite.err, keep)
                )
            )

    def _with_children(self, result: TestCaseResult, children: list[Node]) -> None:
        """Failures, skips, Surefire reruns and captured output of one test case."""
        limits = self.limits
        kinds = self._kinds
        primaries: list[Node] = []
        retries: list[Node] = []
        flaky = 0
        skipped: Node | None = None
        out: list[Node] = []
        err: list[Node] = []
        for child in children:
            kind = kinds.get(child.tag)
            if kind is None:
                continue  # <properties> and unknown extensions
            if kind <= _ERROR:
                primaries.append(child)
            elif kind == _SKIPPED:
                skipped = skipped or child
            elif kind == _OUT:
                out.append(child)
            elif kind == _ERR:
                err.append(child)
            else:
                retries.append(child)
                flaky += kind <= _FLAKY_ERROR
        result.retries = len(retries)

        if primaries:
            first = primaries[0]
            result.status = (
                TestStatus.FAILED if kinds[first.tag] == _FAILURE else TestStatus.ERRORED
            )
            traces = [t for t in (p.text(limits.max_stack_chars) for p in primaries) if t]
            trace = "\n\n".join(traces) if len(traces) > 1 else (traces[0] if traces else None)
            body = first.text(limits.max_stack_chars)
        elif retries:
            first = retries[0]
            if flaky == len(retries):
                result.status = TestStatus.FLAKY  # failed, then passed on a rerun
            elif kinds[first.tag] in (_RERUN_ERROR, _FLAKY_ERROR):
                result.status = TestStatus.ERRORED
            else:
                result.status = TestStatus.FAILED
            holder = first.find(self._stack_trace) or first
            trace = body = holder.text(limits.max_stack_chars)
        elif skipped is not None:
            result.status = TestStatus.SKIPPED
            body = skipped.text(limits.max_stack_chars)
            result.message = message_of(
                skipped.attrib.get("message"), body, limits.max_message_chars
            )
            result.stack_trace = body
            return
        else:
            return  # passed: its output is never analysed, so it is not kept
        result.message = message_of(first.attrib.get("message"), body, limits.max_message_chars)
        result.failure_type = first.attrib.get("type") or None
        if trace is not None and len(trace) > limits.max_stack_chars:
            trace = trace[: limits.max_stack_chars]
        result.stack_trace = trace
        keep = limits.max_output_tail_chars
        result.stdout_tail = _joined_tail(out, keep)
        result.stderr_tail = _joined_tail(err, keep)

    def _intern(self, value: str) -> str:
        return self._shared.setdefault(value, value)


def _joined_tail(nodes: list[Node], limit: int) -> str | None:
    """The tail of several output elements read as one stream (pytest writes several)."""
    if not nodes:
        return None
    if len(nodes) == 1:
        return nodes[0].tail(limit)
    text = "".join(part for node in nodes if (part := node.tail(limit)))
    return text[-limit:] or None
