"""Bounding the free text kept from result files (messages, stack traces, captured output)."""

from __future__ import annotations


def first_line(text: str | None) -> str | None:
    """The first non-blank line, stripped; None when there is none."""
    if not text:
        return None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped:
            return stripped
    return None


def clip(text: str | None, limit: int) -> str | None:
    """Keep head and tail of text within `limit` characters; both ends matter in traces."""
    if text is None or len(text) <= limit:
        return text
    return clip_parts(text, text, len(text), limit)


def clip_parts(head: str, tail: str, total: int, limit: int) -> str:
    """Clip a text of `total` (> limit) characters known only by its first characters (`head`)
    and its last ones (`tail`), marking how much was left out."""
    marker = f"\n[... {total - limit} characters omitted ...]\n"
    keep = limit - len(marker)
    if keep < 2:
        return head[:limit]
    first = keep // 2
    return head[:first] + marker + tail[len(tail) - (keep - first) :]


def tail(text: str | None, limit: int) -> str | None:
    """The last `limit` characters of captured output; None for empty output."""
    if not text:
        return None
    return text if len(text) <= limit else text[-limit:]


def message_of(attribute: str | None, body: str | None, limit: int) -> str | None:
    """A failure message: the `message` attribute if non-blank, else the body's first line."""
    message = attribute.strip() if attribute else ""
    return clip(message or first_line(body), limit)


def path_basename(path: str) -> str:
    """The last component of a POSIX or Windows path (.NET tools write either)."""
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def strip_prefix(name: str, classname: str) -> str:
    """`Ns.Class.Method(x: 1)` -> `Method(x: 1)` when the class is already the classname."""
    if classname and name.startswith(classname + "."):
        return name[len(classname) + 1 :]
    return name


# lxml's parser targets get attribute values as libxml2 leaves them when it expands no
# entities: every "&" (written `&amp;` or `&#38;`) stays as the text "&#38;", and nothing else
# does, so replacing that text back is exact.
_AMP_REF = "&#38;"


def attr_text(value: str) -> str:
    """An attribute value as written in the document, "&" restored."""
    return value.replace(_AMP_REF, "&") if "&" in value else value


def attr_dict(attrib: dict[str, str]) -> dict[str, str]:
    """`attrib`, or a copy with "&" restored where a value needs it."""
    if not attrib:  # most elements; lxml then passes a mapping slower to iterate than a dict
        return attrib
    for value in attrib.values():
        if "&" in value:
            return {key: attr_text(text) for key, text in attrib.items()}
    return attrib
