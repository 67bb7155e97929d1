"""NUnit 2.x XML: `<test-results>` / nested `<test-suite>` / `<test-case executed result success>`.

The elements inside a test case (`failure/message`, `failure/stack-trace`, `reason/message`) are
NUnit 3's, so only the attributes differ: no `classname` (the name is fully qualified), `time`
instead of `duration`, and a `result` from NUnit 2.5's ResultState (2.4 and older write only
`executed` and `success`).
"""

from __future__ import annotations

from bot.results.junit import parse_duration
from bot.results.model import TestCaseResult, TestStatus
from bot.results.nunit3 import NUnit3Target

# NUnit 2.5 ResultState. NotRunnable (a bad test signature) and Cancelled are NUnit 3's
# Failed:Invalid / Failed:Cancelled, which the NUnit 3 parser reports as errors too.
_STATUS = {
    "Success": TestStatus.PASSED,
    "Failure": TestStatus.FAILED,
    "Error": TestStatus.ERRORED,
    "Cancelled": TestStatus.ERRORED,
    "NotRunnable": TestStatus.ERRORED,
    "Ignored": TestStatus.SKIPPED,
    "Skipped": TestStatus.SKIPPED,
    "Inconclusive": TestStatus.SKIPPED,
}
_ASSEMBLY_SUFFIXES = (".dll", ".exe")


def _status(attrib: dict[str, str]) -> TestStatus:
    result = attrib.get("result")
    if result is not None and result in _STATUS:
        return _STATUS[result]
    if attrib.get("executed", "True").lower() != "true":
        return TestStatus.SKIPPED
    return TestStatus.PASSED if attrib.get("success", "").lower() == "true" else TestStatus.FAILED


def split_name(full: str) -> tuple[str, str]:
    """`Ns.Fixture.Method(1.5, "a.b")` -> (`Ns.Fixture`, `Method(1.5, "a.b")`)."""
    classname = full.split("(", 1)[0].rpartition(".")[0]
    return classname, full[len(classname) + 1 :] if classname else full


class NUnit2Target(NUnit3Target):
    """Parser target for NUnit 2.x results (a `<test-results>` or `<test-suite>` document)."""

    def is_assembly(self, attrib: dict[str, str]) -> bool:
        kind = attrib.get("type")
        if kind is not None:
            return kind == "Assembly"
        # NUnit 2.4 and older write no `type`: the assembly suite is named after its file.
        return attrib.get("name", "").lower().endswith(_ASSEMBLY_SUFFIXES)

    def identity(self, attrib: dict[str, str]) -> TestCaseResult:
        classname, name = split_name(attrib.get("name", ""))
        return TestCaseResult(
            name=name,
            classname=classname,
            status=_status(attrib),
            duration=parse_duration(attrib.get("time", "0")),
        )
