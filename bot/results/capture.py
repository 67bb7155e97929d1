"""A SAX-style lxml parser target that builds tiny trees for just the elements a dialect cares
about (one test case at a time), with bounded text and bounded child counts.

lxml calls `start`/`data`/`end` from C; no document tree is ever built, so memory stays flat
however large the file. Finished results are appended to `ready` and handed out by the driver
after each chunk it feeds.

Text is the most frequent event (every run of whitespace between elements is one), so `data` is
not a Python method: it is `list.append` on a buffer, a C call, and the buffered text is given
to the element open at the next `start`/`end` event (or dropped when none is captured). The
driver drains the buffer after each chunk it feeds, so it never holds more than one chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.results.errors import ErrorCode, ResultFileError
from bot.results.limits import ParseLimits
from bot.results.model import TestCaseResult
from bot.results.parsed import SuiteOutput
from bot.results.text import attr_dict, clip_parts

# Past this many descendants, a captured element's further children are dropped (a test case
# with a million <property/> children must not cost a million Python objects).
MAX_CAPTURED_NODES = 2_000


class _Spill:
    """Head and dropped-character count of a text that outgrew its bound (rare)."""

    __slots__ = ("dropped", "head")

    def __init__(self, head: str) -> None:
        self.head = head
        self.dropped = 0


class Node:
    """One captured element: tag, attributes, children and its own text, bounded in size."""

    __slots__ = ("attrib", "children", "parts", "size", "spill", "tag")

    def __init__(self, tag: str, attrib: dict[str, str]) -> None:
        self.tag = tag
        self.attrib = attrib
        self.children: list[Node] | None = None
        self.parts: list[str] | None = None
        self.size = 0
        self.spill: _Spill | None = None

    def take(self, text: list[str], bound: int, keep: int) -> None:
        """Append buffered text runs, compacting once the text outgrows `bound` characters."""
        if self.parts is None:
            self.parts = text[:]
        else:
            self.parts.extend(text)
        self.size += sum(map(len, text))
        if self.size > bound:
            self.compact(keep)

    def compact(self, keep: int) -> None:
        """Keep the first and last `keep` characters of an oversized text, count the rest."""
        joined = "".join(self.parts or ())
        if self.spill is None:
            self.spill = _Spill(joined[:keep])
            joined = joined[keep:]
        rest = joined[-keep:]
        self.spill.dropped += len(joined) - len(rest)
        self.parts = [rest]
        self.size = len(rest)

    def text(self, limit: int) -> str | None:
        """The text, head and tail kept within `limit` chars, blank lines trimmed; None if blank."""
        body = "".join(self.parts) if self.parts else ""
        spill = self.spill
        if spill is not None:
            total = len(spill.head) + spill.dropped + len(body)
            body = clip_parts(spill.head, body, total, limit)
        elif len(body) > limit:
            body = clip_parts(body, body, len(body), limit)
        body = body.strip("\r\n")
        return body if body and not body.isspace() else None

    def tail(self, limit: int) -> str | None:
        """The last `limit` characters of the text (captured output); None if empty."""
        if not self.parts:
            return None
        body = "".join(self.parts)
        return body[-limit:] if len(body) > limit else body

    def find(self, tag: str) -> Node | None:
        """First child with this tag."""
        for child in self.children or ():
            if child.tag == tag:
                return child
        return None

    def findall(self, tag: str) -> list[Node]:
        """All children with this tag."""
        return [child for child in self.children or () if child.tag == tag]


class CaptureTarget:
    """Base lxml target: elements whose tag is in `capture` become `Node` trees passed to
    `captured`; other elements go to `outer_start` / `outer_end`."""

    capture: frozenset[str] = frozenset()

    def __init__(
        self,
        *,
        filename: str,
        limits: ParseLimits,
        suite_outputs: list[SuiteOutput] | None,
    ) -> None:
        self.filename = filename
        self.limits = limits
        self.suite_outputs = suite_outputs
        self.ready: list[TestCaseResult] = []
        self.count = 0
        self.counted = 0  # results synthesised from count attributes
        self._keep = max(limits.max_stack_chars, limits.max_output_tail_chars)
        self._bound = 2 * self._keep
        # Open captured elements; None marks one dropped past MAX_CAPTURED_NODES.
        self._stack: list[Node | None] = []
        self._nodes = 0
        # Text runs since the last event; lxml calls `data` without entering Python.
        self._runs: list[str] = []
        self.data: Callable[[str], None] = self._runs.append

    # lxml target protocol -------------------------------------------------------------
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        stack = self._stack
        if stack:
            parent = stack[-1]
            if self._runs:
                self.give_text(parent)
            self._nodes += 1
            if parent is None or self._nodes > MAX_CAPTURED_NODES:
                stack.append(None)
                return
            node = Node(tag, attr_dict(attrib))
            if parent.children is None:
                parent.children = [node]
            else:
                parent.children.append(node)
            stack.append(node)
        elif tag in self.capture:
            self._nodes = 0
            self._runs.clear()  # text between outer elements belongs to no capture
            stack.append(Node(tag, attr_dict(attrib)))
        else:
            self.outer_start(tag, attr_dict(attrib))

    def end(self, tag: str) -> None:
        stack = self._stack
        if stack:
            node = stack.pop()
            if self._runs:
                self.give_text(node)
            if not stack and node is not None:
                self.captured(node)
        else:
            self.outer_end(tag)

    def doctype(self, *_args: Any) -> None:
        raise ResultFileError(
            ErrorCode.DTD_FORBIDDEN,
            "DOCTYPE / DTD declarations are not allowed in result files",
            filename=self.filename,
        )

    def close(self) -> None:
        """Called by lxml once the document is complete."""
        self.finish()

    # text buffer ----------------------------------------------------------------------------
    def give_text(self, node: Node | None) -> None:
        """Give the buffered text to `node` (None: a dropped element) and empty the buffer."""
        text = self._runs
        if node is not None:
            node.take(text, self._bound, self._keep)
        text.clear()

    def drain(self) -> None:
        """Between chunks: hand buffered text to the open captured element, or drop it."""
        if self._runs:
            stack = self._stack
            self.give_text(stack[-1] if stack else None)

    # dialect hooks ----------------------------------------------------------------------
    def outer_start(self, tag: str, attrib: dict[str, str]) -> None:
        """An element outside any captured one started (suites, assemblies, runs)."""

    def outer_end(self, tag: str) -> None:
        """An element outside any captured one ended."""

    def captured(self, node: Node) -> None:
        """A captured element is complete."""
        raise NotImplementedError

    def finish(self) -> None:
        """The document ended; flush anything held back."""

    # helpers ----------------------------------------------------------------------------
    def emit(self, result: TestCaseResult) -> None:
        """Hand a finished result to the driver, enforcing the test-case limit."""
        self.reserve(1)
        self.ready.append(result)

    def reserve(self, cases: int) -> None:
        """Count `cases` more results against the test-case limit before they are built."""
        self.count += cases
        if self.count > self.limits.max_test_cases:
            raise ResultFileError(
                ErrorCode.TOO_MANY_CASES,
                f"more than {self.limits.max_test_cases} test cases",
                filename=self.filename,
            )
