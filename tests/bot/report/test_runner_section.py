"""The report page's testing-node section: node, duration, how it ended, log tail and link."""

from __future__ import annotations

import re

from bot.report.runner_section import RunnerSummary, render_runner_section

LOG_URL = "https://aac.example/cycles/c1/log?expires=9&sig=abc"


def _summary(**changes: object) -> RunnerSummary:
    fields: dict[str, object] = {
        "runner": "node-a",
        "state": "done",
        "attempts": 1,
        "duration": 134.0,
        "exit_code": 1,
        "reason": None,
        "log_tail": "collected 2 items\n1 failed, 1 passed in 0.2s\n",
        "log_url": LOG_URL,
    }
    return RunnerSummary(**{**fields, **changes})  # type: ignore[arg-type]


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_the_section_names_the_node_its_duration_and_how_it_ended() -> None:
    html = render_runner_section(_summary())
    assert "<h2>Testing node</h2>" in html
    assert "node <b>node-a</b>" in html
    assert "node node-a · finished · took 2m 14s · exit code 1" in _text(html)
    assert "attempt" not in html  # a first attempt is not worth a word


def test_a_retried_job_says_its_attempt_and_reason() -> None:
    html = render_runner_section(
        _summary(state="failed", attempts=3, exit_code=None, reason="lease expired")
    )
    assert "infrastructure error · took 2m 14s · attempt 3" in _text(html)
    assert "exit code" not in html
    assert "<p>lease expired</p>" in html


def test_a_job_not_taken_yet_has_no_node_nor_duration() -> None:
    html = render_runner_section(
        _summary(runner=None, state="queued", duration=None, exit_code=None, log_tail="")
    )
    assert "<p>node <b>none yet</b> · queued</p>" in html
    assert "took" not in html
    assert "<details" not in html  # no empty log box


def test_the_tail_is_shown_as_stored_and_escaped() -> None:
    # The tail is the stored log, masked before it was stored: the renderer shows it as is,
    # as text (a test may print markup).
    tail = "token=[REDACTED]\n<script>alert(1)</script>\n"
    html = render_runner_section(_summary(log_tail=tail))
    assert "<summary>Log (last lines)</summary>" in html
    assert "<pre>token=[REDACTED]\n&lt;script&gt;alert(1)&lt;/script&gt;\n</pre>" in html
    assert "<script>" not in html


def test_the_whole_log_link_keeps_the_pages_signature() -> None:
    html = render_runner_section(_summary())
    escaped = LOG_URL.replace("&", "&amp;")
    assert f'<a href="{escaped}">Download the whole log</a>' in html
