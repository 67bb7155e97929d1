"""Which dialect a result file is, from its root element and namespace (never its name)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.results.errors import ErrorCode, ResultFileError

TRX_NAMESPACE = "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"
FORMATS = ("junit", "xunit2", "nunit3", "trx")

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_START_TAG = re.compile(
    rb"<(?P<name>[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)"
    rb"(?P<attrs>(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*/?>"
)
_ATTR = re.compile(rb"([^\s=/>]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_SUPPORTED = "JUnit XML, xUnit.net v2, NUnit 3 or TRX"


@dataclass(frozen=True, slots=True)
class RootElement:
    """The document element: local name and namespace URI ("" when none)."""

    name: str
    namespace: str


def _ascii_view(head: bytes) -> bytes:
    """Markup bytes scannable as ASCII: strip a UTF-8 BOM, transcode UTF-16 (BOM required)."""
    if head.startswith(_UTF8_BOM):
        return head[len(_UTF8_BOM) :]
    if head.startswith(_UTF16_BOMS):
        text = head[: len(head) - len(head) % 2].decode("utf-16", errors="replace")
        return text.encode("utf-8", errors="replace")
    return head


def sniff_root(head: bytes, *, filename: str = "<input>") -> RootElement:
    """Find the root element in the first bytes, skipping the prolog; reject any DOCTYPE."""
    data = _ascii_view(head)
    if not data.strip():
        raise ResultFileError(ErrorCode.EMPTY, "the file is empty", filename=filename)
    pos = 0
    while True:
        while pos < len(data) and data[pos] in b" \t\r\n":
            pos += 1
        if data.startswith(b"<?", pos):
            end = data.find(b"?>", pos)
            step = 2
        elif data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos)
            step = 3
        elif data[pos : pos + 9].upper() == b"<!DOCTYPE":
            raise ResultFileError(
                ErrorCode.DTD_FORBIDDEN,
                "DOCTYPE / DTD declarations are not allowed in result files",
                filename=filename,
            )
        else:
            break
        if end < 0:
            raise _unknown(filename, "no root element in the first bytes")
        pos = end + step
    match = _START_TAG.match(data, pos)
    if match is None:
        raise _unknown(filename, "it does not start with an XML element")
    qname = match["name"].decode("ascii", errors="replace")
    prefix, _, local = qname.rpartition(":")
    wanted = b"xmlns:" + prefix.encode() if prefix else b"xmlns"
    namespace = ""
    for attr in _ATTR.finditer(match["attrs"]):
        if attr[1] == wanted:
            namespace = (attr[2] if attr[2] is not None else attr[3]).decode(errors="replace")
    return RootElement(local, namespace)


def format_of(root: RootElement, *, filename: str = "<input>") -> str:
    """Map a root element to a dialect name, or raise `unknown_format`."""
    if root.name in ("testsuites", "testsuite"):
        return "junit"
    if root.name == "assemblies":
        return "xunit2"
    if root.name == "test-run":
        return "nunit3"
    if root.name == "TestRun" and root.namespace == TRX_NAMESPACE:
        return "trx"
    raise _unknown(filename, f"root element <{root.name[:40]}> is not a known test-result format")


def detect_format(head: bytes, *, filename: str = "<input>") -> str:
    """Return "junit", "xunit2", "nunit3" or "trx" from a file's first bytes; raise if unknown."""
    return format_of(sniff_root(head, filename=filename), filename=filename)


def _unknown(filename: str, why: str) -> ResultFileError:
    return ResultFileError(
        ErrorCode.UNKNOWN_FORMAT, f"not a {_SUPPORTED} file: {why}", filename=filename
    )
