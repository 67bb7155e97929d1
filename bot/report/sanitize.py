"""Make LLM-written text safe to post in a PR comment or check run.

The model read untrusted test output, so its text is untrusted too: no raw HTML, no mentions or
issue cross-references that notify people, links only to hosts we trust, no images (tracking
pixels), bounded length, secrets redacted. Applying it twice changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Set
from urllib.parse import urlsplit

from bot.analysis.redact import Redactor

_ZERO_WIDTH = "\u200b"  # breaks @-mentions and #refs without changing what a reader sees
# Invisible and direction-changing characters: could hide a token from redaction or make the
# displayed text differ from the posted text. (Tab and newline are kept.)
_INVISIBLE = re.compile(
    "[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u00ad\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff]"
)
_IMAGE = re.compile(r"!\[[^\]\n]*\]\s*(?:\([^)\n]*\)|\[[^\]\n]*\])")
_MARKDOWN_LINK = re.compile(
    r"\[(?P<text>[^\]\n]*)\]\(\s*<?(?P<url>[^)\s>]*)>?(?:\s+\"[^\"\n]*\")?\s*\)"
)
_REFERENCE_DEFINITION = re.compile(r"(?m)^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*(?P<url>\S+).*$")
# Bare URLs and the www. form that GitHub and GitLab turn into links by themselves.
_BARE_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.\-]*://|www\.)[^\s<>`\"'\])]+")
_MENTION = re.compile(r"(?<![\w`/@])@(?=[A-Za-z0-9_\-])")
# "#123" cross-references an issue (and notifies its subscribers); "!12" a GitLab MR.
_REFERENCE = re.compile(r"(?<![&#!])([#!])(?=\d)")
_FENCE_LINE = re.compile(r"(?m)^[ \t]{0,3}(```|~~~)")
ELLIPSIS = "…"


def sanitise_llm_text(
    text: str,
    *,
    allowed_link_hosts: Set[str],
    max_chars: int,
    redactor: Redactor | None = None,
) -> str:
    """Return ``text`` safe to post: redacted, no HTML/mentions/images, trusted links, bounded.

    ``allowed_link_hosts`` are host names (e.g. the SCM host and the bot's public host); links
    elsewhere become plain text. Without ``redactor`` only built-in credential shapes are removed.
    """
    hosts = frozenset(_host_only(h) for h in allowed_link_hosts)
    redactor = redactor or Redactor()
    out = _settled(text, hosts, redactor)
    limit = max_chars
    while len(out) > max_chars and limit > 0:
        # Cutting can break a construct (half a link, an open fence): clean the cut text again.
        out = _settled(_cut(out, limit), hosts, redactor)
        limit -= max(1, len(out) - max_chars)
    return out if len(out) <= max_chars else ""


def _settled(text: str, hosts: frozenset[str], redactor: Redactor) -> str:
    """Apply the rules until nothing changes: removing one construct can form another."""
    for _ in range(5):
        cleaned = _clean_once(text, hosts, redactor)
        if cleaned == text:
            break
        text = cleaned
    return text


def _clean_once(text: str, hosts: frozenset[str], redactor: Redactor) -> str:
    text = _INVISIBLE.sub("", text)
    text = redactor.redact(text)
    text = _IMAGE.sub("", text)
    text = _MARKDOWN_LINK.sub(lambda m: _link(m, hosts), text)
    text = _REFERENCE_DEFINITION.sub(
        lambda m: m.group(0) if _allowed(m["url"], hosts) else "", text
    )
    text = _BARE_URL.sub(lambda m: _bare_url(m, hosts), text)
    # No raw HTML: every "<" becomes an entity, so no tag, comment (our hidden marker) or
    # autolink can be opened. "&" is left alone so that cleaning again changes nothing.
    text = text.replace("<", "&lt;")
    text = _MENTION.sub("@" + _ZERO_WIDTH, text)
    text = _REFERENCE.sub(lambda m: m.group(1) + _ZERO_WIDTH, text)
    return _close_fences(text.strip())


def _host_only(host: str) -> str:
    host = host.strip().lower()
    if "://" in host:
        host = urlsplit(host).hostname or ""
    return host.split(":", 1)[0].rstrip(".")


def _allowed(url: str, hosts: Set[str]) -> bool:
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and host in hosts


def _link(match: re.Match[str], hosts: Set[str]) -> str:
    if _allowed(match["url"], hosts):
        return match.group(0)
    # Keep what the reader was meant to see, without the destination.
    return match["text"]


def _bare_url(match: re.Match[str], hosts: Set[str]) -> str:
    url = match.group(0)
    source, start, end = match.string, match.start(), match.end()
    if start > 0 and source[start - 1] == "`" and source[end : end + 1] == "`":
        return url  # already in a code span: not a link
    if _allowed("https://" + url if url.lower().startswith("www.") else url, hosts):
        return url
    # Inside a code span the platforms do not autolink; drop backticks so it cannot break out.
    return "`" + url.replace("`", "") + "`"


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(ELLIPSIS))]
    # Prefer a word boundary, unless that would throw away much of the text.
    space = cut.rfind(" ")
    if space > len(cut) * 0.8:
        cut = cut[:space]
    # Never leave half an entity at the end.
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp < 4:
        cut = cut[:amp]
    return cut.rstrip() + ELLIPSIS if limit >= len(ELLIPSIS) else ""


def _close_fences(text: str) -> str:
    """An unclosed code fence would swallow the rest of the comment: close it."""
    fences: list[str] = _FENCE_LINE.findall(text)
    if len(fences) % 2:
        return text + "\n" + fences[-1]
    return text
