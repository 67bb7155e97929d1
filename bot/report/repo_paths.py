"""Match the paths a test result or stack trace names to the repository's files at the commit.

Traces name files as the CI machine saw them: under a workspace (``/home/runner/work/r/r/``,
``/builds/group/proj/``, ``D:\\a\\r\\r\\``, a container's ``/app/``), relative to a
sub-project, or by bare name (Java's ``FooTest.java``, ``go test``'s ``foo_test.go``). Each is
matched by the longest common suffix of path segments against the file list; when several
files match equally well the path is ambiguous and nothing is returned, since no annotation
is better than one on the wrong file. Pure: the file list is handed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.analysis.signature import StackFrame, is_library, parse_frames
from bot.results.model import TestCaseResult

_TEST_PATH = re.compile(
    r"(?:^|/)(?:tests?|__tests__|specs?|testing|e2e|src/[\w-]*[tT]est)/"
    r"|(?:^|/)test_[^/]*\.py$|_test\.(?:py|go|rb|exs?)$|_spec\.rb$"
    r"|(?:Test|Tests|IT|Spec|Suite)\.(?:java|kt|kts|scala|groovy|cs|fs|vb|swift)$"
    r"|\.(?:test|spec)\.[cm]?[jt]sx?$"
)
_JVM_SOURCE = re.compile(r"\.(?:java|kt|kts|scala|groovy|clj)$")
_SCHEME = re.compile(r"^[A-Za-z][\w+.-]+:/+")  # file:///, webpack:///
_DRIVE = re.compile(r"^[A-Za-z]:$")


def path_segments(path: str) -> tuple[str, ...]:
    """``path`` as segments: ``/``-separated, without scheme, drive letter, ``.`` or what
    precedes the last ``..``."""
    text = _SCHEME.sub("/", path.strip().replace("\\", "/"), count=1)
    parts = [part for part in text.split("/") if part and part != "."]
    if parts and _DRIVE.match(parts[0]):
        parts = parts[1:]
    if ".." in parts:
        parts = parts[len(parts) - parts[::-1].index("..") :]
    return tuple(parts)


def is_test_file(path: str) -> bool:
    """Whether a repository path looks like a test file by the usual conventions."""
    return bool(_TEST_PATH.search(path))


def _score(candidate: tuple[str, ...], path: list[str]) -> tuple[int, bool] | None:
    """How well ``path`` fits ``candidate``: (common trailing segments, whether ``path`` is all
    of a longer candidate's tail, i.e. the candidate is ``<workspace>/<path>``); None if the two
    share only a file name without either being a suffix of the other."""
    shared = 0
    for mine, theirs in zip(reversed(candidate), reversed(path), strict=False):
        if mine != theirs:
            break
        shared += 1
    if shared == 0:
        return None
    whole_path = shared == len(path)
    whole_candidate = shared == len(candidate)
    if not (whole_path or whole_candidate or shared >= 2):
        return None
    return shared, whole_path and not whole_candidate


class RepoFiles:
    """The files of a repository at one commit, indexed by file name."""

    def __init__(self, paths: Iterable[str]) -> None:
        self._paths = frozenset(paths)
        self._by_name: dict[str, list[str]] = {}
        for path in self._paths:
            self._by_name.setdefault(path.rsplit("/", 1)[-1], []).append(path)
        self._memo: dict[tuple[str, ...], str | None] = {}

    def __len__(self) -> int:
        return len(self._paths)

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def match(self, candidate: str) -> str | None:
        """The one repository path ``candidate`` names, or None when no file or several fit.

        An exact path wins; otherwise the file sharing the most trailing segments, and among
        equals the one the candidate ends with in full (a workspace prefix stripped).
        """
        segments = path_segments(candidate)
        if not segments:
            return None
        joined = "/".join(segments)
        if joined in self._paths:
            return joined
        if segments in self._memo:
            return self._memo[segments]
        best: str | None = None
        best_score: tuple[int, bool] = (0, False)
        tied = False
        for path in self._by_name.get(segments[-1], ()):
            score = _score(segments, path.split("/"))
            if score is None or score < best_score:
                continue
            tied = score == best_score
            best, best_score = path, score
        found = None if tied else best
        self._memo[segments] = found
        return found


def frame_candidates(frame: StackFrame, classname: str = "") -> tuple[str, ...]:
    """The paths a frame may name, best first: a bare file name is qualified by its package.

    ``at com.example.FooTest.adds(FooTest.java:42)`` names ``com/example/FooTest.java``;
    ``go test``'s ``foo_test.go:9`` under package ``github.com/acme/app/foo`` names
    ``github.com/acme/app/foo/foo_test.go``. The bare name is tried after that only for the
    test's own code (its class, or a Go test file), whose directories may not follow the
    package (Kotlin omits the common root package, a Go module may sit in a sub-directory);
    for anything else a bare name alone is too weak a match.
    """
    path = frame.path.strip()
    if not path or "/" in path or "\\" in path:
        return (path,) if path else ()
    if _JVM_SOURCE.search(path):
        # "java.base/java.lang.Thread.run", "app//com.example.Foo.bar": drop the module.
        function = frame.function.rsplit("/", 1)[-1]
        parts = function.split(".")
        if len(parts) < 3:
            return (path,)
        qualified = "/".join([*parts[:-2], path])
        own = bool(classname) and function.startswith((f"{classname}.", f"{classname}$"))
        return (qualified, path) if own else (qualified,)
    if path.endswith("_test.go") and "/" in classname:
        # go-junit-report's classname is the package's import path.
        return f"{classname.rstrip('/')}/{path}", path
    return (path,)


def _own(path: str | None) -> str | None:
    return None if path is None or is_library(path) else path


def locate_in_repo(result: TestCaseResult, files: RepoFiles) -> tuple[str, int] | None:
    """Where to annotate a failing test, as a repository path and line, or None.

    The reported file first (its line, else the trace's line in it); then the innermost
    trace frame in a test file of the repository; then the innermost frame in any of its
    files. Frames in dependencies and frames that match no file, or several, are skipped.
    """
    located: list[tuple[str, StackFrame]] = []
    for frame in parse_frames(result.stack_trace):
        if not frame.path or is_library(frame.path):
            continue
        for candidate in frame_candidates(frame, result.classname):
            path = _own(files.match(candidate))
            if path is not None:
                located.append((path, frame))
                break
    if result.file:
        path = _own(files.match(result.file))
        if path is not None:
            line = result.line or next((f.line for p, f in located if p == path and f.line), None)
            return path, max(line or 1, 1)
    with_line = [(path, frame) for path, frame in located if frame.line is not None]
    # A JVM or .NET class name; go-junit-report's is a package's import path, not one test's.
    own_class = f"{result.classname}." if result.classname and "/" not in result.classname else None
    for path, frame in with_line:
        if is_test_file(path) or (own_class and frame.function.startswith(own_class)):
            return path, max(frame.line or 1, 1)
    if with_line:
        path, frame = with_line[0]
        return path, max(frame.line or 1, 1)
    return None
