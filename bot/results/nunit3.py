"""NUnit 3 XML: `<test-run>` / nested `<test-suite>` / `<test-case result=... label=...>`."""

from __future__ import annotations

import re

from bot.results.capture import CaptureTarget, Node
from bot.results.junit import parse_duration
from bot.results.limits import ParseLimits
from bot.results.model import TestCaseResult, TestStatus
from bot.results.parsed import SuiteOutput
from bot.results.text import path_basename

# NUnit reports unexpected exceptions as "System.InvalidOperationException : message".
_EXCEPTION_PREFIX = re.compile(r"^([A-Za-z_][\w.`+]*(?:Exception|Error)) : ")
_ERROR_LABELS = frozenset({"Error", "Invalid", "Cancelled"})


def _status(result: str, label: str) -> TestStatus:
    if result == "Passed" or result == "Warning":
        return TestStatus.PASSED
    if result == "Failed":
        return TestStatus.ERRORED if label in _ERROR_LABELS else TestStatus.FAILED
    return TestStatus.SKIPPED  # Skipped (Ignored / Explicit), Inconclusive


class NUnit3Target(CaptureTarget):
    """Parser target for NUnit 3 results; the suite is the test assembly's file name."""

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
        self._case, self._suite_tag = ns + "test-case", ns + "test-suite"
        self._failure, self._reason = ns + "failure", ns + "reason"
        self._message, self._trace_tag, self._output = (
            ns + "message",
            ns + "stack-trace",
            ns + "output",
        )
        self.capture = frozenset({self._case})
        self._assemblies: list[str] = []  # assembly name per open <test-suite>

    def outer_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == self._suite_tag:
            parent = self._assemblies[-1] if self._assemblies else ""
            if self.is_assembly(attrib):
                parent = path_basename(attrib.get("name", ""))
            self._assemblies.append(parent)

    def is_assembly(self, attrib: dict[str, str]) -> bool:
        """Whether a <test-suite> is a test assembly (its file name becomes the suite)."""
        return attrib.get("type") == "Assembly"

    def identity(self, attrib: dict[str, str]) -> TestCaseResult:
        """Name, class, status and duration of a <test-case>, from its attributes."""
        get = attrib.get
        return TestCaseResult(
            name=get("name", ""),
            classname=get("classname", ""),
            status=_status(get("result", ""), get("label", "")),
            duration=parse_duration(get("duration", "0")),
        )

    def outer_end(self, tag: str) -> None:
        if tag == self._suite_tag and self._assemblies:
            self._assemblies.pop()

    def _reason_message(self, node: Node) -> str | None:
        reason = node.find(self._reason)
        message = reason.find(self._message) if reason is not None else None
        return message.text(self.limits.max_message_chars) if message is not None else None

    def captured(self, node: Node) -> None:
        limits = self.limits
        result = self.identity(node.attrib)
        result.suite = self._assemblies[-1] if self._assemblies else ""
        if result.status is TestStatus.SKIPPED:
            result.message = self._reason_message(node)
        elif result.status is not TestStatus.PASSED:
            failure = node.find(self._failure)
            if failure is None:
                # NUnit 2's NotRunnable explains itself in <reason>, as a skip would.
                result.message = self._reason_message(node)
            else:
                message = failure.find(self._message)
                stack = failure.find(self._trace_tag)
                text = message.text(limits.max_stack_chars) if message is not None else None
                if text and result.status is TestStatus.ERRORED:
                    match = _EXCEPTION_PREFIX.match(text)
                    result.failure_type = match[1] if match else None
                result.message = text[: limits.max_message_chars] if text else None
                result.stack_trace = (
                    stack.text(limits.max_stack_chars) if stack is not None else None
                )
            output = node.find(self._output)
            if output is not None:
                result.stdout_tail = output.tail(limits.max_output_tail_chars)
        self.emit(result)
