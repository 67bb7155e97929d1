"""Paths from test results and stack traces, matched to a repository's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.report.repo_paths import RepoFiles, locate_in_repo, path_segments
from bot.results.model import TestCaseResult, TestStatus

# A polyglot monorepo as `git ls-tree -r --name-only HEAD` lists it (blobs only).
FILES = RepoFiles(
    [
        ".github/workflows/ci.yml",
        "README.md",
        "pyproject.toml",
        "conftest.py",
        "src/widgets/__init__.py",
        "src/widgets/api.py",
        "src/widgets/models.py",
        "src/widgets/json/decoder.py",
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/test_api.py",
        "tests/unit/test_models.py",
        "tests/integration/test_api.py",
        "services/orders/pom.xml",
        "services/orders/src/main/java/com/example/orders/OrderService.java",
        "services/orders/src/main/java/com/example/orders/Utils.java",
        "services/orders/src/test/java/com/example/orders/OrderServiceTest.java",
        "services/billing/src/main/java/com/example/billing/Utils.java",
        "services/billing/src/test/java/com/example/billing/InvoiceTest.java",
        "android/app/src/test/kotlin/LoginViewModelTest.kt",
        "android/app/src/main/kotlin/LoginViewModel.kt",
        "go.mod",
        "internal/calc/calc.go",
        "internal/calc/calc_test.go",
        "pkg/calc/calc_test.go",
        "vendor/github.com/stretchr/testify/assert/assertions.go",
        "web/package.json",
        "web/src/components/Button.tsx",
        "web/src/components/Button.test.tsx",
        "web/src/utils/format.ts",
        "web/src/utils/format.test.ts",
        "dotnet/src/Widgets/Calculator.cs",
        "dotnet/tests/Widgets.Tests/CalculatorTests.cs",
    ]
)
TRACES = Path(__file__).with_name("traces")
ORDER_TEST = "services/orders/src/test/java/com/example/orders/OrderServiceTest.java"
BUTTON_TEST = "web/src/components/Button.test.tsx"
MODELS_TEST = "tests/unit/test_models.py"
GO_PKG = "github.com/acme/widgets"
CALC_TEST = "internal/calc/calc_test.go"


def _trace(name: str) -> str:
    return (TRACES / name).read_text(encoding="utf-8")


def _failed(
    trace: str | None = None,
    *,
    classname: str = "",
    file: str | None = None,
    line: int | None = None,
) -> TestCaseResult:
    return TestCaseResult(
        name="t",
        classname=classname,
        file=file,
        line=line,
        status=TestStatus.FAILED,
        stack_trace=trace,
    )


# -- single paths ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        # exact, and the same path written differently
        ("tests/test_api.py", "tests/test_api.py"),
        ("./tests/test_api.py", "tests/test_api.py"),
        ("tests\\test_api.py", "tests/test_api.py"),
        # CI workspaces stripped by the longest suffix
        ("/home/runner/work/widgets/widgets/tests/test_api.py", "tests/test_api.py"),
        ("/builds/acme/platform/widgets/tests/unit/test_models.py", "tests/unit/test_models.py"),
        ("/__w/widgets/widgets/src/widgets/api.py", "src/widgets/api.py"),
        ("D:\\a\\w\\w\\dotnet\\src\\Widgets\\Calculator.cs", "dotnet/src/Widgets/Calculator.cs"),
        ("file:///home/runner/work/w/w/web/src/utils/format.ts", "web/src/utils/format.ts"),
        ("/app/src/widgets/models.py", "src/widgets/models.py"),  # a container's copy
        ("/home/runner/work/widgets/widgets/conftest.py", "conftest.py"),  # at the root
        # relative to a sub-project, or with a package path
        ("src/utils/format.test.ts", "web/src/utils/format.test.ts"),
        ("com/example/orders/OrderServiceTest.java", ORDER_TEST),
        ("../web/src/components/Button.tsx", "web/src/components/Button.tsx"),
        # a unique bare name
        ("OrderServiceTest.java", ORDER_TEST),
        # ambiguous: several files fit equally well
        ("test_api.py", None),
        ("Utils.java", None),
        ("calc_test.go", None),
        # not in the repository
        ("tests/test_deleted.py", None),
        ("/home/runner/work/widgets/widgets/build/generated/Parser.java", None),
        # only the file name in common, under other directories: too weak
        ("/home/runner/work/widgets/widgets/docs/api.py", None),
        ("", None),
    ],
)  # fmt: skip
def test_match(candidate: str, expected: str | None) -> None:
    assert FILES.match(candidate) == expected


def test_workspace_prefix_prefers_the_file_it_ends_with() -> None:
    # Both end in tests/test_api.py; only one is exactly what follows the workspace.
    files = RepoFiles(["tests/test_api.py", "legacy/tests/test_api.py"])
    assert files.match("/home/runner/work/w/w/tests/test_api.py") == "tests/test_api.py"
    assert files.match("/home/runner/work/w/w/legacy/tests/test_api.py") == (
        "legacy/tests/test_api.py"
    )
    # Relative and matching both in full: cannot tell.
    assert RepoFiles(["a/tests/x.py", "b/tests/x.py"]).match("tests/x.py") is None


@pytest.mark.parametrize(
    "workspace",
    [
        "/home/runner/work/widgets/widgets/",
        "/builds/acme/widgets/",
        "C:\\agent\\_work\\1\\s\\",
        "/var/lib/jenkins/workspace/widgets_PR-7/",
    ],
)
def test_every_file_is_found_under_a_workspace(workspace: str) -> None:
    for path in FILES._paths:
        assert FILES.match(workspace + path) == path


def test_path_segments() -> None:
    assert path_segments("C:\\a\\b\\c.cs") == ("a", "b", "c.cs")
    assert path_segments("webpack:///./src/x.js") == ("src", "x.js")
    assert path_segments("pkg/../../lib//x.py") == ("lib", "x.py")


# -- whole results: traces as CI runners print them (traces/) -------------------------------
PYTEST_LONG = _trace("pytest-long.txt")
PYTHON_TRACEBACK = _trace("python-traceback.txt")
SUREFIRE = _trace("surefire.txt")
SUREFIRE_NPE_IN_MAIN = _trace("surefire-npe-in-main.txt")
KOTLIN = _trace("kotlin-junit4.txt")
GO_ASSERTION = _trace("go-test.txt")
GO_PANIC = _trace("go-panic.txt")
JEST = _trace("jest.txt")
DOTNET = _trace("dotnet-xunit.txt")


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        # pytest: the reported file and line win; the trace gives the line when missing
        (_failed(PYTEST_LONG, file=MODELS_TEST, line=25), (MODELS_TEST, 25)),
        (_failed(PYTEST_LONG, file=MODELS_TEST), (MODELS_TEST, 31)),
        # ... and the test file's frame over the code it calls and the standard library
        (_failed(PYTEST_LONG), (MODELS_TEST, 31)),
        # no test frame: the innermost of the project's own, not /usr/lib or site-packages
        (_failed(PYTHON_TRACEBACK), ("src/widgets/api.py", 40)),
        # JUnit/Surefire: bare names qualified by the frame's package, the test's frame first
        (_failed(SUREFIRE, classname="com.example.orders.OrderServiceTest"), (ORDER_TEST, 42)),
        # no test frame in the trace: the project's code, in the right one of two Utils.java
        (_failed(SUREFIRE_NPE_IN_MAIN, classname="com.example.billing.InvoiceTest"),
         ("services/billing/src/main/java/com/example/billing/Utils.java", 9)),
        # Kotlin omits the root package from directories; the test's own class still matches
        (_failed(KOTLIN, classname="com.example.app.LoginViewModelTest"),
         ("android/app/src/test/kotlin/LoginViewModelTest.kt", 27)),
        # go test: the package's import path picks one of two calc_test.go
        (_failed(GO_ASSERTION, classname=f"{GO_PKG}/internal/calc"), (CALC_TEST, 27)),
        (_failed(GO_ASSERTION, classname=f"{GO_PKG}/pkg/calc"), ("pkg/calc/calc_test.go", 27)),
        (_failed(GO_ASSERTION), None),  # no package: two files fit
        (_failed(GO_PANIC, classname=f"{GO_PKG}/internal/calc"), (CALC_TEST, 9)),
        # Jest: node_modules frames are never annotated
        (_failed(JEST, classname="Button saves"), (BUTTON_TEST, 18)),
        (_failed(JEST, file="src/components/Button.test.tsx"), (BUTTON_TEST, 18)),
        # .NET on a Windows runner
        (_failed(DOTNET, classname="Widgets.Tests.CalculatorTests"),
         ("dotnet/tests/Widgets.Tests/CalculatorTests.cs", 18)),
        # a reported file that is not in the repository falls through to the trace
        (_failed(PYTEST_LONG, file="generated/test_models.py", line=3), (MODELS_TEST, 31)),
        # nothing names a repository file
        (_failed("AssertionError: boom"), None),
        (_failed(None, classname="com.example.orders.OrderServiceTest"), None),
    ],
)  # fmt: skip
def test_locate_in_repo(result: TestCaseResult, expected: tuple[str, int] | None) -> None:
    assert locate_in_repo(result, FILES) == expected


def test_library_frames_never_match_by_file_name_alone() -> None:
    # The repository has an Assert.java of its own, but JUnit's frames name org/junit.
    files = RepoFiles(["src/test/java/com/acme/Assert.java", "src/test/java/com/acme/FooTest.java"])
    trace = "x\n\tat org.junit.Assert.fail(Assert.java:89)\n\tat com.acme.FooTest.a(FooTest.java:7)"
    assert locate_in_repo(_failed(trace), files) == ("src/test/java/com/acme/FooTest.java", 7)
    only_junit = "x\n\tat org.junit.Assert.fail(Assert.java:89)"
    assert locate_in_repo(_failed(only_junit, classname="com.acme.FooTest"), files) is None


def test_vendored_files_are_not_annotated() -> None:
    trace = (
        "github.com/stretchr/testify/assert.Equal(...)\n"
        "\t/home/runner/work/widgets/widgets/vendor/github.com/stretchr/testify/assert/"
        "assertions.go:50\n"
    )
    assert locate_in_repo(_failed(trace), FILES) is None
