"""Structural checks on rendered markdown, shared by report tests (not a test module)."""

from __future__ import annotations

import re

_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_OUR_TAGS = re.compile(r"</?details>|</?summary>|<!-- aac:report:[\w.-]+ -->")


def outside_fences(markdown: str) -> list[str]:
    """Lines outside fenced code blocks; raises AssertionError if a fence is left open."""
    fence: str | None = None
    outside: list[str] = []
    for line in markdown.split("\n"):
        if fence is not None:
            m = _CLOSE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        m = _OPEN.match(line)
        # CommonMark: a backtick fence's info string cannot contain a backtick.
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            fence = m.group(1)
            continue
        outside.append(line)
    assert fence is None, "code fence left open"
    return outside


def assert_well_formed(markdown: str, *, details_allowed: bool = True) -> None:
    """Fences closed, <details> balanced, no raw HTML or control characters of ours leaking."""
    depth = 0
    for line in outside_fences(markdown):
        depth += line.count("<details>") - line.count("</details>")
        assert depth >= 0, "</details> before <details>"
        # Any other "<" outside a fence would be HTML injected from test output.
        assert "<" not in _OUR_TAGS.sub("", line), f"raw HTML outside a fence: {line!r}"
    assert depth == 0, "<details> left open"
    if not details_allowed:
        assert "<details>" not in "\n".join(outside_fences(markdown))
    bad = _CONTROL.search(markdown)
    assert bad is None, f"control character {bad.group(0)!r}"
