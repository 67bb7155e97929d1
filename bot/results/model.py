"""The per-test result every parser yields and every consumer reads."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TestStatus(StrEnum):
    """Outcome of one test case after retries inside one run."""

    __test__ = False  # not a pytest class

    PASSED = "passed"
    FAILED = "failed"  # an assertion failed
    ERRORED = "errored"  # the test could not run to an assertion (exception, setup error)
    SKIPPED = "skipped"
    FLAKY = "flaky"  # failed at least once, then passed on a retry within the same run


@dataclass(slots=True)
class TestCaseResult:
    """One test case as reported by a result file, normalised across dialects."""

    __test__ = False

    name: str
    classname: str = ""
    suite: str = ""
    file: str | None = None
    line: int | None = None
    status: TestStatus = TestStatus.PASSED
    duration: float = 0.0  # seconds
    message: str | None = None  # failure / error / skip message (first line or attribute)
    failure_type: str | None = None  # exception type or failure "type" attribute
    stack_trace: str | None = None
    stdout_tail: str | None = None  # last bytes of captured stdout (bounded)
    stderr_tail: str | None = None
    retries: int = 0  # extra executions inside the run (reruns / flaky attempts)
    # Synthesised from a suite's count attributes: the file listed no test case to name.
    counted: bool = False

    @property
    def test_id(self) -> str:
        """Stable identity of a test across runs: class and name."""
        return make_test_id(self.classname, self.name)


def make_test_id(classname: str, name: str) -> str:
    """The identity verdicts and history match tests by, from stored class and name."""
    return f"{classname}::{name}" if classname else name
