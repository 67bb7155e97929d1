"""xUnit.net v2 XML, `<assemblies><assembly><collection><test result="Pass|Fail|Skip">`, and v1,
`<assembly><class><test ...>` as the document, whose test elements are v2's."""

from __future__ import annotations

from bot.results.capture import CaptureTarget, Node
from bot.results.junit import parse_duration
from bot.results.limits import ParseLimits
from bot.results.model import TestCaseResult, TestStatus
from bot.results.parsed import SuiteOutput
from bot.results.text import clip, path_basename, strip_prefix

_STATUS = {
    "Pass": TestStatus.PASSED,
    "Fail": TestStatus.FAILED,
    "Skip": TestStatus.SKIPPED,
    "NotRun": TestStatus.SKIPPED,
}


class XUnit2Target(CaptureTarget):
    """Parser target for xUnit.net v2 results, including assembly-level cleanup errors."""

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
        self._test, self._errors, self._error = ns + "test", ns + "errors", ns + "error"
        self._assembly_tag = ns + "assembly"
        self._failure, self._message = ns + "failure", ns + "message"
        self._trace_tag, self._reason, self._output = (
            ns + "stack-trace",
            ns + "reason",
            ns + "output",
        )
        self.capture = frozenset({self._test, self._errors})
        self._assembly = ""

    def outer_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == self._assembly_tag:
            self._assembly = path_basename(attrib.get("name", ""))

    def captured(self, node: Node) -> None:
        if node.tag == self._test:
            self.emit(self._test_result(node))
            return
        for error in node.findall(self._error):
            # Cleanup / fatal errors outside any test: surface them as errored "tests".
            result = TestCaseResult(
                name=f"[{error.attrib.get('type', 'error')}]",
                classname=error.attrib.get("name", ""),
                suite=self._assembly,
                status=TestStatus.ERRORED,
            )
            self._add_failure(result, error.find(self._failure))
            self.emit(result)

    def _test_result(self, node: Node) -> TestCaseResult:
        get = node.attrib.get
        classname = get("type", "")
        line = get("source-line")
        result = TestCaseResult(
            name=strip_prefix(get("name", ""), classname),
            classname=classname,
            suite=self._assembly,
            file=get("source-file") or None,
            line=int(line) if line and line.isdigit() else None,
            status=_STATUS.get(get("result", ""), TestStatus.SKIPPED),
            duration=parse_duration(get("time", "0")),
        )
        limits = self.limits
        if result.status is TestStatus.SKIPPED:
            reason = node.find(self._reason)
            if reason is not None:
                # v2 writes the text itself, v1 wraps it: <reason><message>...</message></reason>.
                reason = reason.find(self._message) or reason
            result.message = reason.text(limits.max_message_chars) if reason is not None else None
        elif result.status is TestStatus.FAILED:
            self._add_failure(result, node.find(self._failure))
            output = node.find(self._output)
            if output is not None:
                result.stdout_tail = output.tail(limits.max_output_tail_chars)
        return result

    def _add_failure(self, result: TestCaseResult, failure: Node | None) -> None:
        if failure is None:
            return
        limits = self.limits
        result.failure_type = failure.attrib.get("exception-type") or None
        message = failure.find(self._message)
        stack = failure.find(self._trace_tag)
        result.message = clip(
            message.text(limits.max_message_chars) if message is not None else None,
            limits.max_message_chars,
        )
        result.stack_trace = stack.text(limits.max_stack_chars) if stack is not None else None
