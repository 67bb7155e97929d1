"""Which dialect a result file is, from its root element and namespace (never its name)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.results.errors import ErrorCode, ResultFileError

TRX_NAMESPACE = "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"
FORMATS = ("junit", "xunit1", "xunit2", "nunit2", "nunit3", "trx")

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_START_TAG = re.compile(
    rb"<(?P<name>[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)"
    rb"(?P<attrs>(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*/?>"
)
_ATTR = re.compile(rb"([^\s=/>]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_SUPPORTED = "JUnit XML, xUnit.net v1/v2, NUnit 2/3 or TRX"
_DOCTYPE = b"<!DOCTYPE"


@dataclass(frozen=True, slots=True)
class RootElement:
    """The document element: local name, namespace URI ("" when none), its attribute names,
    and where an accepted DOCTYPE declaration sits in the head bytes (to blank it out)."""

    name: str
    namespace: str
    attributes: frozenset[str] = frozenset()
    doctype: tuple[int, int] | None = None


def _ascii_view(head: bytes) -> bytes:
    """Markup bytes scannable as ASCII: strip a UTF-8 BOM, transcode UTF-16 (BOM required)."""
    if head.startswith(_UTF8_BOM):
        return head[len(_UTF8_BOM) :]
    if head.startswith(_UTF16_BOMS):
        text = head[: len(head) - len(head) % 2].decode("utf-16", errors="replace")
        return text.encode("utf-8", errors="replace")
    return head


def _forbidden(filename: str, why: str) -> ResultFileError:
    return ResultFileError(ErrorCode.DTD_FORBIDDEN, why, filename=filename)


def _doctype_end(data: bytes, pos: int, filename: str) -> int:
    """End of the DOCTYPE declaration at `pos`; raise unless it declares and uses no entity.

    Accepted: `<!DOCTYPE name>`, with an external id, and an internal subset without
    `<!ENTITY` or parameter-entity (`%`) text. Anything unusual is refused, never guessed at."""
    i = pos + len(_DOCTYPE)
    while i < len(data):
        char = data[i : i + 1]
        if char in (b'"', b"'"):
            close = data.find(char, i + 1)
            if close < 0:
                break
            i = close + 1
        elif char == b"[":
            close = data.find(b"]", i + 1)
            if close < 0:
                break
            subset = data[i + 1 : close]
            if b"<!ENTITY" in subset or b"%" in subset:
                raise _forbidden(filename, "the DOCTYPE declares entities, which are not allowed")
            i = close + 1
            while data[i : i + 1] in (b" ", b"\t", b"\r", b"\n"):
                i += 1
            if data[i : i + 1] != b">":
                break
            return i + 1
        elif char == b">":
            return i + 1
        else:
            i += 1
    raise _forbidden(filename, "the DOCTYPE declaration could not be read in the first bytes")


def sniff_root(head: bytes, *, filename: str = "<input>") -> RootElement:
    """Find the root element in the first bytes, skipping the prolog; a DOCTYPE is accepted
    only if it declares no entity (UTF-8 files only: its span is blanked before parsing)."""
    data = _ascii_view(head)
    if not data.strip():
        raise ResultFileError(ErrorCode.EMPTY, "the file is empty", filename=filename)
    doctype: tuple[int, int] | None = None
    transcoded = head.startswith(_UTF16_BOMS)
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
        elif data[pos : pos + 9].upper() == _DOCTYPE:
            if doctype is not None or not data.startswith(_DOCTYPE, pos) or transcoded:
                # A second or lower-case DOCTYPE, or one in a transcoded (UTF-16) file.
                raise _forbidden(filename, "DOCTYPE / DTD declarations are not allowed here")
            end = _doctype_end(data, pos, filename)
            offset = len(_UTF8_BOM) if head.startswith(_UTF8_BOM) else 0
            doctype = (pos + offset, end + offset)
            pos = end
            continue
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
    names: set[str] = set()
    for attr in _ATTR.finditer(match["attrs"]):
        names.add(attr[1].decode(errors="replace"))
        if attr[1] == wanted:
            namespace = (attr[2] if attr[2] is not None else attr[3]).decode(errors="replace")
    return RootElement(local, namespace, frozenset(names), doctype)


def blank_doctype(head: bytes, root: RootElement) -> bytes:
    """The head with an accepted DOCTYPE replaced by spaces (line breaks kept, so positions in
    errors stay right): libxml2 then never sees a DTD, and an entity reference is an error."""
    if root.doctype is None:
        return head
    start, end = root.doctype
    blank = bytes(b if b in b"\r\n" else 0x20 for b in head[start:end])
    return head[:start] + blank + head[end:]


def format_of(root: RootElement, *, filename: str = "<input>") -> str:
    """Map a root element to a dialect name, or raise `unknown_format`."""
    if root.name in ("testsuites", "testsuite"):
        return "junit"
    if root.name == "assemblies":
        return "xunit2"
    if root.name == "assembly":
        return "xunit1"  # xUnit.net v1 writes one <assembly> as the document
    if root.name == "test-run":
        return "nunit3"
    if root.name == "test-results":
        return "nunit2"
    if root.name == "test-suite":
        # A lone suite: NUnit 2 suites carry `executed`/`success`, NUnit 3 ones `runstate`.
        return "nunit2" if "executed" in root.attributes else "nunit3"
    if root.name == "TestRun" and root.namespace == TRX_NAMESPACE:
        return "trx"
    raise _unknown(filename, f"root element <{root.name[:40]}> is not a known test-result format")


def detect_format(head: bytes, *, filename: str = "<input>") -> str:
    """Return one of `FORMATS` from a file's first bytes; raise if unknown."""
    return format_of(sniff_root(head, filename=filename), filename=filename)


def _unknown(filename: str, why: str) -> ResultFileError:
    return ResultFileError(
        ErrorCode.UNKNOWN_FORMAT, f"not a {_SUPPORTED} file: {why}", filename=filename
    )
