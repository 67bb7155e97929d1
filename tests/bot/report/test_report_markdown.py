"""Markdown building blocks: escaping, fences, truncation, URLs, model markdown."""

from __future__ import annotations

from markdown_checks import assert_well_formed

from bot.report.markdown import (
    clean,
    details,
    escape_html,
    escape_inline,
    fence,
    link,
    safe_markdown,
    safe_url,
    shorten_trace,
    truncate_bytes,
    utf8_len,
)


def test_clean_drops_controls_and_bidi_but_keeps_newlines_and_tabs() -> None:
    assert clean("a\x00b\x1b[0m\tc\r\nd\re\u202ef\x7f") == "ab[0m\tc\nd\nef"


def test_escape_inline_neutralises_markdown_html_and_mentions() -> None:
    out = escape_inline("<b>*x*</b> `y` [l](u) @team #1 | ~~s~~ $m$\nnext")
    assert "<" not in out
    assert "&lt;b&gt;" in out
    assert "\\*x\\*" in out
    assert "\\`y\\`" in out
    assert "\\[l\\](u)" in out
    assert "@\u2060team" in out
    assert "\n" not in out


def test_escape_inline_is_safe_at_line_start() -> None:
    assert escape_inline("- item") == "\\- item"
    assert escape_inline("1. item") == "1\\. item"
    assert escape_inline("> quote") == "&gt; quote"  # an entity cannot start a quote


def test_escape_inline_truncates() -> None:
    assert escape_inline("x" * 50, 10) == "x" * 9 + "…"


def test_escape_html_for_summary() -> None:
    assert escape_html('<a href="x">@me</a>') == "&lt;a href=&quot;x&quot;&gt;@\u2060me&lt;/a&gt;"


def test_fence_is_longer_than_any_backtick_run() -> None:
    block = fence("a ``` b\n`````\nc")
    first = block.split("\n")[0]
    assert first == "``````"
    assert block.endswith("\n``````")
    assert_well_formed(block)


def test_truncate_bytes_never_splits_a_character() -> None:
    text = "é" * 100  # 2 bytes each
    cut = truncate_bytes(text, 51)
    assert utf8_len(cut) <= 51
    assert cut.endswith("…")
    assert truncate_bytes("short", 10) == "short"
    assert utf8_len(truncate_bytes("🔥" * 10, 2)) <= 2


def test_shorten_trace_keeps_head_and_tail() -> None:
    trace = "\n".join(f"line {i}" for i in range(1000))
    short = shorten_trace(trace, 9, 10_000)
    assert short.startswith("line 0\n")
    assert short.endswith("line 999")
    assert "lines omitted" in short
    assert utf8_len(shorten_trace("x" * 1_000_000, 50, 2_000)) <= 2_100


def test_safe_url_only_http() -> None:
    assert safe_url("https://x.example/a b(c)") == "https://x.example/a%20b%28c%29"
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("") is None
    assert safe_url(None) is None
    assert link("report", "javascript:x") == "report"
    assert link("report", "https://x") == "[report](https://x)"


def test_details_escapes_summary() -> None:
    block = details("<b>x</b>", "body")
    assert block.startswith("<details><summary>&lt;b&gt;x&lt;/b&gt;</summary>\n\n")
    assert_well_formed(block)


def test_safe_markdown_keeps_formatting_but_closes_fences_and_blocks_html() -> None:
    text = "**bold**\n<details><script>x</script>\n- ```\n```python\ncode ``` here\n"
    out = safe_markdown(text, 10_000)
    assert "**bold**" in out
    assert "<details>" not in out
    assert "&lt;script>" in out
    assert_well_formed(out)


def test_safe_markdown_respects_budget_and_rebalances() -> None:
    out = safe_markdown("```\n" + "x" * 10_000, 100)
    assert_well_formed(out)
    assert utf8_len(out) < 200
