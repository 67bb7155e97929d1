"""Visual Studio TRX: `UnitTestResult`s joined to `UnitTest/TestMethod` (class, assembly) by
`testId`. Definitions usually follow the results, so unmatched results wait for the end."""

from __future__ import annotations

import re

from bot.results.capture import CaptureTarget, Node
from bot.results.detect import TRX_NAMESPACE
from bot.results.limits import ParseLimits
from bot.results.model import TestCaseResult, TestStatus
from bot.results.parsed import SuiteOutput
from bot.results.text import path_basename, strip_prefix

_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)")
# Every value of `TestOutcome` in vstst.xsd (the TRX schema), with the meaning Microsoft's
# TestOutcome enumeration (Microsoft.VisualStudio.TestTools.Common) documents for it:
_STATUS = {
    "Error": TestStatus.ERRORED,  # an error was generated while the test ran
    "Failed": TestStatus.FAILED,  # completed with failed assertions or exceptions
    "Timeout": TestStatus.ERRORED,  # the test timed out: it never reached its verdict
    "Aborted": TestStatus.ERRORED,  # stopped by the tester or the framework mid-run
    "Inconclusive": TestStatus.SKIPPED,  # completed, no indication of passing or failing
    "PassedButRunAborted": TestStatus.PASSED,  # passed; the run was aborted afterwards
    "NotRunnable": TestStatus.ERRORED,  # had its chance to run but could not (bad test)
    "NotExecuted": TestStatus.SKIPPED,  # not executed because of user action ([Ignore])
    "Disconnected": TestStatus.ERRORED,  # the run was disconnected before it completed
    "Warning": TestStatus.PASSED,  # a warning message, "but the test did not fail"
    "Passed": TestStatus.PASSED,
    "Completed": TestStatus.PASSED,  # completed, no qualitative measure of the result
    "InProgress": TestStatus.ERRORED,  # started and never finished: the host died
    "Pending": TestStatus.SKIPPED,  # queued, never started
}
_UNKNOWN_OUTCOME = TestStatus.ERRORED  # not in the schema: never counted as a pass or a skip


def parse_timespan(value: str) -> float:
    """Seconds from a .NET TimeSpan, `[d.]hh:mm:ss[.fffffff]`; 0.0 if malformed."""
    match = _TIMESPAN.fullmatch(value.strip())
    if match is None:
        return 0.0
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


class TrxTarget(CaptureTarget):
    """Parser target for TRX files (MSTest, `dotnet test --logger trx`, VSTest)."""

    def __init__(
        self,
        *,
        namespace: str,
        filename: str,
        limits: ParseLimits,
        suite_outputs: list[SuiteOutput] | None,
    ) -> None:
        super().__init__(filename=filename, limits=limits, suite_outputs=suite_outputs)
        ns = f"{{{namespace or TRX_NAMESPACE}}}"
        self._result, self._unit_test = ns + "UnitTestResult", ns + "UnitTest"
        self._summary, self._run = ns + "ResultSummary", ns + "TestRun"
        self._inner, self._method = ns + "InnerResults", ns + "TestMethod"
        self._output, self._error_info = ns + "Output", ns + "ErrorInfo"
        self._message, self._trace_tag = ns + "Message", ns + "StackTrace"
        self._stdout, self._stderr = ns + "StdOut", ns + "StdErr"
        self._run_infos, self._run_info, self._text = ns + "RunInfos", ns + "RunInfo", ns + "Text"
        self.capture = frozenset({self._result, self._unit_test, self._summary})
        self._definitions: dict[str, tuple[str, str]] = {}  # testId -> (class, assembly)
        self._pending: list[tuple[TestCaseResult, str]] = []
        self._run_name = ""

    def outer_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == self._run:
            self._run_name = attrib.get("name", "")

    def captured(self, node: Node) -> None:
        if node.tag == self._result:
            inner = node.find(self._inner)
            # A data-driven test's rows are its inner results; the parent only sums them up.
            for row in inner.findall(self._result) if inner is not None else [node]:
                self._add_result(row)
        elif node.tag == self._unit_test:
            self._add_definition(node)
        else:
            self._add_summary(node)

    def finish(self) -> None:
        for result, test_id in self._pending:
            self._resolve(result, test_id)
            self.ready.append(result)  # counted against the limit when held back
        self._pending.clear()

    def _add_result(self, node: Node) -> None:
        get = node.attrib.get
        outcome = get("outcome", "")
        result = TestCaseResult(
            name=get("testName", ""),
            status=_STATUS.get(outcome, _UNKNOWN_OUTCOME),
            duration=parse_timespan(get("duration", "")),
        )
        self._add_output(result, node.find(self._output))
        test_id = get("testId", "")
        if test_id in self._definitions:
            self._resolve(result, test_id)
            self.emit(result)
        else:
            self.emit(result)  # enforces the case limit now ...
            self.ready.pop()  # ... but the result waits for its definition
            self._pending.append((result, test_id))

    def _add_output(self, result: TestCaseResult, output: Node | None) -> None:
        if output is None:
            return
        limits = self.limits
        info = output.find(self._error_info)
        if info is not None:
            message = info.find(self._message)
            stack = info.find(self._trace_tag)
            result.message = message.text(limits.max_message_chars) if message is not None else None
            if result.status is not TestStatus.SKIPPED:
                result.stack_trace = (
                    stack.text(limits.max_stack_chars) if stack is not None else None
                )
        if result.status in (TestStatus.FAILED, TestStatus.ERRORED):
            stdout, stderr = output.find(self._stdout), output.find(self._stderr)
            keep = limits.max_output_tail_chars
            result.stdout_tail = stdout.tail(keep) if stdout is not None else None
            result.stderr_tail = stderr.tail(keep) if stderr is not None else None

    def _add_definition(self, node: Node) -> None:
        if len(self._definitions) >= self.limits.max_test_cases:
            return  # more definitions than results could ever use
        method = node.find(self._method)
        if method is None:
            return
        storage = method.attrib.get("codeBase") or node.attrib.get("storage", "")
        self._definitions[node.attrib.get("id", "")] = (
            method.attrib.get("className", ""),
            path_basename(storage),
        )

    def _resolve(self, result: TestCaseResult, test_id: str) -> None:
        classname, suite = self._definitions.get(test_id, ("", ""))
        # VSTest may write assembly-qualified class names: "Ns.Class, Assembly, Version=...".
        classname = classname.split(",", 1)[0].strip()
        result.classname, result.suite = classname, suite
        result.name = strip_prefix(result.name, classname)

    def _add_summary(self, node: Node) -> None:
        if self.suite_outputs is None:
            return
        keep = self.limits.max_output_tail_chars
        output = node.find(self._output)
        stdout = output.find(self._stdout) if output is not None else None
        infos = node.find(self._run_infos)
        texts = [
            text.tail(keep) or ""
            for info in (infos.findall(self._run_info) if infos is not None else [])
            if (text := info.find(self._text)) is not None
        ]
        out = stdout.tail(keep) if stdout is not None else None
        err = "\n".join(t for t in texts if t)[-keep:] or None
        if out or err:
            self.suite_outputs.append(SuiteOutput(self._run_name, out, err))
