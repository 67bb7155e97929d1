from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.analysis.redact import Redactor
from bot.report.sanitize import sanitise_llm_text

HOSTS = {"github.com", "aac.example.com"}
ZW = "\u200b"


def clean(text: str, *, max_chars: int = 2000, redactor: Redactor | None = None) -> str:
    return sanitise_llm_text(text, allowed_link_hosts=HOSTS, max_chars=max_chars, redactor=redactor)


def test_raw_html_is_escaped() -> None:
    out = clean("<script>alert(1)</script><details><summary>x</summary></details><!-- aac:x -->")
    assert "<" not in out
    assert "&lt;script>" in out
    assert "&lt;!-- aac:x -->" in out


@pytest.mark.parametrize(
    ("text", "mention"),
    [
        ("ping @octocat please", "@octocat"),
        ("cc @org/security-team", "@org/security-team"),
        ("@all look", "@all"),
        ("(@someone)", "@someone"),
    ],
)
def test_mentions_are_neutralised(text: str, mention: str) -> None:
    out = clean(text)
    assert mention not in out
    assert mention.replace("@", "@" + ZW) in out


def test_email_addresses_and_code_are_not_treated_as_mentions() -> None:
    assert clean("mail dev@example.org") == "mail dev@example.org"


def test_issue_and_merge_request_references_do_not_cross_link() -> None:
    out = clean("fixed in #123 and !45, see owner/repo#7; colour &#60; stays")
    assert "#123" not in out
    assert "!45" not in out
    assert "repo#7" not in out
    assert "&#60;" in out


def test_links_to_allowed_hosts_are_kept() -> None:
    text = "see [the PR](https://github.com/o/r/pull/1) and https://aac.example.com/cycles/9"
    assert clean(text) == text


@pytest.mark.parametrize(
    "link",
    [
        "[click](https://evil.example/phish)",
        "[click](http://github.com.evil.example/x)",
        "[click](https://github.com@evil.example/x)",
        "[click](javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        '[click](https://evil.example/x "title")',
    ],
)
def test_links_elsewhere_become_plain_text(link: str) -> None:
    out = clean(f"please {link} now")
    assert "](" not in out
    assert "click" in out
    assert "evil.example" not in out


@pytest.mark.parametrize(
    "url", ["https://evil.example/a?b=c", "http://10.0.0.1:8080/x", "www.evil.example/path"]
)
def test_bare_urls_elsewhere_are_not_clickable(url: str) -> None:
    out = clean(f"go to {url} now")
    assert f"`{url}`" in out
    assert f" {url} " not in out


def test_reference_style_links_elsewhere_are_removed() -> None:
    out = clean("see [docs][1]\n\n[1]: https://evil.example/docs\n[2]: https://github.com/x")
    assert "evil.example" not in out
    assert "[2]: https://github.com/x" in out


def test_images_are_dropped_even_from_allowed_hosts() -> None:
    out = clean("a ![pixel](https://github.com/p.png) b ![x][ref] c")
    assert "![" not in out
    assert "pixel" not in out
    assert out == "a  b  c"


def test_length_is_bounded_and_fences_are_closed() -> None:
    text = "intro\n```\n" + "code line\n" * 500
    out = clean(text, max_chars=200)
    assert len(out) <= 200
    assert "…" in out
    assert out.rstrip().endswith("```")


def test_unbalanced_fence_is_closed_even_when_short() -> None:
    out = clean("look:\n```python\nprint(1)")
    assert out.endswith("\n```")


def test_secrets_are_redacted_with_the_given_redactor_and_built_in_shapes() -> None:
    token = "ghp_" + "k" * 36
    out = clean(
        f"token {token} and org value s3cret-org-value", redactor=Redactor(["s3cret-org-value"])
    )
    assert token not in out
    assert "s3cret-org-value" not in out
    assert token not in clean(f"x {token}")  # built-in shapes even without a redactor


def test_invisible_characters_cannot_hide_a_token() -> None:
    token = "ghp_" + "k" * 36
    hidden = token[:10] + "\u200b" + token[10:] + "\u202e"
    out = clean(f"leak {hidden}")
    assert "k" * 20 not in out
    assert "\u202e" not in out


def test_truncation_cannot_leave_part_of_a_token() -> None:
    token = "ghp_" + "k" * 36
    out = clean("x" * 50 + " " + token, max_chars=70)
    assert "kkkkkkkk" not in out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(
                [
                    "@user",
                    "#12",
                    "<b>",
                    "[a](https://evil.example/x)",
                    "[b](https://github.com/y)",
                    "https://evil.example/z",
                    "![i](https://github.com/i.png)",
                    "```",
                    "www.evil.example",
                    "`",
                    "&lt;",
                ]
            ),
        ),
        max_size=8,
    ),
    st.integers(min_value=10, max_value=300),
)
def test_sanitising_is_idempotent_and_bounded(parts: list[str], max_chars: int) -> None:
    once = clean(" ".join(parts), max_chars=max_chars)
    assert len(once) <= max_chars
    assert "<" not in once
    assert clean(once, max_chars=max_chars) == once
