"""Markdown building blocks that stay safe whatever the text they wrap.

Text from test output is hostile: outside a code fence it is escaped (HTML entities,
backslash-escaped markdown punctuation, @-mentions broken); inside a fence the fence is
longer than any backtick run it wraps, so nothing can close it early.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

ELLIPSIS = "…"

# C0 controls except \t and \n (a lone \r becomes \n), DEL, and bidi overrides (they
# can disguise text).
# Word joiner after "@" keeps the text readable but stops GitHub/GitLab/Azure mentions.
_MENTION_BREAK = "@\u2060"
# Enough to stop emphasis, code, links, tables, strikethrough and GitLab math anywhere;
# what only matters at the start of a line is handled by _LINE_START.
_INLINE_PUNCT = "\\`*_[]#|~$"
_INLINE: dict[str, str] = {
    **{c: "\\" + c for c in _INLINE_PUNCT},
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "@": _MENTION_BREAK,
    "\n": " ",
    "\t": " ",
}
_HTML: dict[str, str] = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "@": _MENTION_BREAK,
    "\n": " ",
    "\t": " ",
}


def _replace_all(text: str, table: dict[str, str]) -> str:
    # A chain of str.replace beats str.translate with a dict and a regex with a callback.
    for old, new in table.items():
        if old in text:
            text = text.replace(old, new)
    return text


_NEEDS_CLEANING = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_BACKTICK_RUN = re.compile(r"`+")
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LONG_RUN = re.compile(r"`{3,}|~{3,}")


def utf8_len(text: str) -> int:
    """Size of ``text`` in UTF-8 bytes."""
    return len(text.encode("utf-8", "surrogatepass"))


def clean(text: str) -> str:
    """Remove characters platforms reject or that disguise text; keep \\n and \\t."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. from surrogateescape decoding) cannot be posted.
        text = text.encode("utf-8", "replace").decode("utf-8")
    if not _NEEDS_CLEANING.search(text):
        return text
    return _NEEDS_CLEANING.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def truncate_bytes(text: str, max_bytes: int, suffix: str = ELLIPSIS) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes, ending with ``suffix`` if cut."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= max_bytes:
        return text
    room = max_bytes - utf8_len(suffix)
    if room <= 0:
        return raw[: max(max_bytes, 0)].decode("utf-8", "ignore")
    return raw[:room].decode("utf-8", "ignore") + suffix


def truncate_chars(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, ending with an ellipsis if cut."""
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - 1, 0)] + ELLIPSIS if max_chars > 0 else ""


_LINE_START = re.compile(r"^(?:[-+=>]|(\d+)([.)]))")


def escape_inline(text: str, max_chars: int | None = None) -> str:
    """One line of untrusted text made inert for markdown outside a fence, even at line start."""
    if max_chars is not None:
        text = truncate_chars(text, max_chars)
    out = _replace_all(clean(text).strip(), _INLINE)
    # A leading "-", "+", "=", ">" or "1." would start a list, heading or quote.
    return _LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else "\\" + m[0], out, count=1)


def escape_html(text: str, max_chars: int | None = None) -> str:
    """One line of untrusted text for an HTML context such as ``<summary>``."""
    if max_chars is not None:
        text = truncate_chars(text, max_chars)
    return _replace_all(clean(text), _HTML)


def fence(content: str, info: str = "") -> str:
    """A fenced code block whose fence is longer than any backtick run in ``content``."""
    body = clean(content).rstrip("\n")
    longest = max((len(run) for run in _BACKTICK_RUN.findall(body)), default=0)
    ticks = "`" * max(3, longest + 1)
    info = re.sub(r"[^\w+-]", "", info)
    return f"{ticks}{info}\n{body}\n{ticks}"


def shorten_trace(trace: str, max_lines: int, max_bytes: int) -> str:
    """Keep the head and the tail of a long trace (the tail often names the error)."""
    if len(trace) > 2 * max_bytes + 2:
        # Cut megabyte traces down before any line work.
        trace = f"{trace[:max_bytes]}\n… truncated …\n{trace[-max_bytes:]}"
    lines = clean(trace).rstrip("\n").split("\n")
    if len(lines) > max_lines:
        head = max(max_lines // 3, 1)
        tail = max(max_lines - head, 1)
        omitted = len(lines) - head - tail
        lines = [*lines[:head], f"… {omitted:,} lines omitted …", *lines[-tail:]]
    text = "\n".join(lines)
    if utf8_len(text) > max_bytes:
        half = max(max_bytes // 2 - 16, 0)
        raw = text.encode("utf-8")
        head_text = raw[:half].decode("utf-8", "ignore")
        tail_text = raw[-half:].decode("utf-8", "ignore") if half else ""
        text = f"{head_text}\n… truncated …\n{tail_text}"
    return text


def safe_url(url: str | None) -> str | None:
    """An http(s) URL safe to put in ``[text](url)``; None for anything else."""
    if not url:
        return None
    url = clean(url).strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    return quote(url, safe="/:?#[]@!$&'*+,;=%-._~")


def link(text: str, url: str | None) -> str:
    """A markdown link, or the escaped text alone when the URL is unusable."""
    target = safe_url(url)
    label = escape_inline(text)
    return f"[{label}]({target})" if target else label


def details(summary: str, body: str) -> str:
    """A collapsed ``<details>`` block; ``summary`` is escaped here, ``body`` is markdown."""
    return f"<details><summary>{escape_html(summary)}</summary>\n\n{body}\n\n</details>"


def safe_markdown(text: str, max_bytes: int) -> str:
    """Markdown from a model, kept as markdown but unable to open HTML or leave a fence open."""
    lines = clean(truncate_bytes(text[:max_bytes], max_bytes)).split("\n")
    out: list[str] = []
    block: list[str] | None = None
    closer = ""
    for line in lines:
        if block is not None:
            stripped = line.strip()
            if stripped.startswith(closer) and stripped.strip(closer[0]) == "":
                out.append(fence("\n".join(block)))
                block = None
            else:
                block.append(line)
            continue
        match = _FENCE_LINE.match(line)
        if match:
            block, closer = [], match.group(1)
            continue
        # "<" alone is enough to stop HTML; ">" stays so blockquotes still render.
        line = line.replace("<", "&lt;").replace("@", _MENTION_BREAK)
        # Long backtick/tilde runs elsewhere (lists, quotes) could open a fence: escape them.
        out.append(_LONG_RUN.sub(lambda m: "".join("\\" + c for c in m.group(0)), line))
    if block is not None:
        out.append(fence("\n".join(block)))
    return "\n".join(out).strip("\n")
