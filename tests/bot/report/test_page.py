"""The report page's HTML: what a PR author needs to read it (rendering in a browser: e2e)."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

from report_scenarios import all_pass, many_failures, one_failure

from bot.analysis.model import Verdict
from bot.report.chart import MAX_X_LABELS, SuitePoint, history_chart, point_labels
from bot.report.model import ReportModel
from bot.report.page import BADGES, Successor, render_page
from bot.report.web_links import WebLinks


class _Tags(HTMLParser):
    """Start tags with attributes, and text per tag, of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, list[str]] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._open:
            self.text.setdefault(self._open[-1], []).append(data)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def _between(html: str, start: str, end: str) -> str:
    return html.split(start, 1)[1].split(end, 1)[0]


def _page(model: ReportModel, chart: list[SuitePoint] | None = None) -> str:
    return render_page(model, chart=chart or [], recent={})


def test_every_badge_is_explained_and_flaky_shows_its_flip_rate() -> None:
    html = _page(many_failures())
    legend = _between(html, 'id="legend"', "</details>")
    for verdict, (label, meaning) in BADGES.items():
        assert f'class="verdict {verdict.value}">{label}</span></dt><dd>' in legend
        assert meaning.split(":")[0].replace("'", "&#x27;") in legend
    assert 'class="verdict flaky"' in html
    assert "flaky · 100% flip rate" in html  # flips on every recent run
    assert 'class="verdict also_on_base"' in html
    # A green run has no badges, so no legend.
    assert 'id="legend"' not in _page(all_pass())


def test_failure_messages_keep_their_line_breaks_escaped() -> None:
    model = one_failure()
    html = _page(model)
    assert _between(html, '<pre class="message">', "</pre>") == (
        "assert Decimal(&#x27;10.01&#x27;) == Decimal(&#x27;10.00&#x27;)\n"
        " +  where Decimal(&#x27;10.01&#x27;) = total()\n"
        " +    where total = &lt;shop.cart.Cart object at 0x7f3a2c&gt;.total"
    )
    # The cluster's heading is the real first line, never the masked pattern.
    assert (
        "<b>AssertionError</b>: assert Decimal(&#x27;10.01&#x27;) == Decimal(&#x27;10.00&#x27;)"
        in html
    )
    assert "&lt;n&gt;" not in html
    assert "at cart.py:total</div>" in html


def test_hostile_text_stays_text() -> None:
    model = one_failure()
    cluster = model.clusters[0]
    test = cluster.tests[0]
    nasty = "<script>alert(1)</script>\n<img src=x onerror=alert(1)>"
    bad = dataclasses.replace(test, result=dataclasses.replace(test.result, message=nasty))
    model = dataclasses.replace(
        model, clusters=(dataclasses.replace(cluster, tests=(bad,), example_message=nasty),)
    )
    tags = _parse(_page(model))
    assert not [t for t, _ in tags.tags if t in ("script", "img")]


def test_links_to_the_commit_the_pr_and_the_pipeline() -> None:
    model = one_failure()  # GitHub, PR 42, a pipeline URL
    tags = _parse(_page(model))
    hrefs = {href for tag, attrs in tags.tags if tag == "a" and (href := attrs.get("href"))}
    assert f"https://github.com/acme/shop/commit/{model.identity.sha}" in hrefs
    assert "https://github.com/acme/shop/pull/42" in hrefs
    assert "https://ci.example.com/acme/shop/pipelines/981" in hrefs
    assert "PR #42" in "".join(tags.text["a"])

    hostile = dataclasses.replace(
        model.identity,
        pipeline_url="javascript:alert(1)",
        web=WebLinks(commit="javascript:alert(1)", pipeline="javascript:alert(1)"),
    )
    html = _page(dataclasses.replace(model, identity=hostile))
    assert "javascript:" not in html


def test_the_page_lists_the_passed_tests() -> None:
    html = _page(all_pass())
    assert "<h2>Passed (120)</h2>" in html
    assert html.count("<li><code>tests.test_misc::test_ok_") == 120


def _superseded_card(model: ReportModel, successor: Successor) -> str:
    html = render_page(model, chart=[], recent={}, superseded_by=successor)
    card = _between(html, 'id="superseded-by">', "</div>")
    return re.sub(r"<[^>]+>", "", card)


def test_a_cycle_superseded_by_a_newer_commit_names_that_commit() -> None:
    model = one_failure()
    newer = Successor("c2", "f" * 40, "https://aac.example/cycles/c2?sig=1")
    assert _superseded_card(model, newer) == (
        f"Superseded by cycle c2 for a newer commit, fffffff. This report describes commit "
        f"{model.identity.short_sha}."
    )


def test_a_cycle_re_run_at_the_same_commit_says_which_attempt_replaced_it() -> None:
    model = one_failure()
    rerun = Successor("c2", model.identity.sha, "https://aac.example/cycles/c2?sig=1", 2)
    html = render_page(model, chart=[], recent={}, superseded_by=rerun)
    assert 'href="https://aac.example/cycles/c2?sig=1">c2</a>' in html
    assert _superseded_card(model, rerun) == (
        "Superseded by cycle c2, re-run as attempt 2 at the same commit. This report describes "
        f"attempt 1 of commit {model.identity.short_sha}."
    )
    assert "newer commit" not in html


# -- the history chart -------------------------------------------------------------------
def _labels(svg: str, cls: str) -> list[str]:
    return re.findall(rf'<text class="{cls}"[^>]*>([^<]*)</text>', svg)


def test_one_cycle_is_a_labelled_point_on_scaled_axes() -> None:
    svg = history_chart([SuitePoint("abc1234", 0.75, 134.0, current=True)])
    tags = _parse(svg)
    assert [t for t, _ in tags.tags].count("rect") == 1
    assert [t for t, _ in tags.tags].count("circle") == 1  # a line of one point draws nothing
    assert "polyline" not in svg
    assert _labels(svg, "axis-pass") == ["0%", "50%", "100%"]
    assert _labels(svg, "axis-duration") == ["0s", "1m 7s", "2m 14s"]
    assert _labels(svg, "value") == ["75%"]
    assert _labels(svg, "x-label") == ["abc1234 · this"]
    assert "1 cycle<" in svg


def test_three_cycles_have_labels_that_differ_even_for_one_commit_run_twice() -> None:
    points = [
        SuitePoint("aaaaaaa", 1.0, 10.0),
        SuitePoint("aaaaaaa", 0.5, 30.0),
        SuitePoint("bbbbbbb", 0.9, 20.0, current=True),
    ]
    svg = history_chart(points)
    labels = _labels(svg, "x-label")
    assert labels == ["aaaaaaa (1)", "aaaaaaa (2)", "bbbbbbb · this"]
    assert _labels(svg, "axis-duration") == ["0s", "15s", "30s"]
    assert _labels(svg, "value") == ["100%", "50%", "90%"]
    tags = _parse(svg)
    rects = [a for t, a in tags.tags if t == "rect"]
    heights = [float(a["height"] or 0) for a in rects]
    assert heights[1] > heights[2] > heights[0] > 0  # bars to one scale
    xs = [float(a["cx"] or 0) for t, a in tags.tags if t == "circle"]
    assert xs == sorted(xs)
    assert len(set(xs)) == 3
    assert "polyline" in svg


def test_many_cycles_label_a_few_and_always_the_last() -> None:
    points = [SuitePoint(f"{i:07x}", 1.0, 5.0) for i in range(30)]
    labels = _labels(history_chart(points), "x-label")
    assert len(labels) <= MAX_X_LABELS + 1
    assert labels[0] == "0000000"
    assert labels[-1] == f"{29:07x}"
    assert len(point_labels(points)) == len(set(point_labels(points))) == 30


def test_no_cycles_says_so() -> None:
    assert "No cycles" in history_chart([])


def test_verdicts_all_have_a_badge() -> None:
    assert set(BADGES) == set(Verdict)


def test_a_cycle_with_one_failure_in_thousands_is_not_shown_as_100_percent() -> None:
    svg = history_chart([SuitePoint("abc1234", 4_999 / 5_000, 60.0)])
    assert _labels(svg, "value") == ["99%"]
    assert "100% passed" not in svg


def test_the_ai_summary_keeps_paragraphs_and_code_blocks_as_text() -> None:
    model = many_failures()  # its summary: a paragraph, a fenced block, a paragraph
    html = _page(model)
    assert _between(html, '<div class="card ai"><b>AI analysis</b>', "</div>") == (
        "<p>The database is unreachable from the test runners, which breaks **checkout**.</p>"
        "<pre>psql: could not connect</pre>"
        "<p>Discount validation is a separate bug.</p>"
    )
    assert model.llm is not None
    hostile = dataclasses.replace(model.llm, summary="<script>x</script>\n```\n<b>open fence")
    tags = _parse(_page(dataclasses.replace(model, llm=hostile)))
    assert "script" not in [t for t, _ in tags.tags]
    assert "<b>open fence" not in _page(dataclasses.replace(model, llm=hostile))


def test_a_test_without_a_message_shows_what_its_trace_says() -> None:
    model = one_failure()
    cluster = model.clusters[0]
    test = cluster.tests[0]
    trace = (
        "def test_totals():\n>       assert cart.totals() == {'pear': 3}\n"
        "E       AssertionError: assert {'pear': 2} == {'pear': 3}\n"
        "E         Differing items:\n\ntests/test_cart.py:14: AssertionError\n"
    )
    quiet = dataclasses.replace(
        test, result=dataclasses.replace(test.result, message=None, stack_trace=trace)
    )
    html = _page(
        dataclasses.replace(model, clusters=(dataclasses.replace(cluster, tests=(quiet,)),))
    )
    assert _between(html, '<pre class="message">', "</pre>") == (
        "assert {&#x27;pear&#x27;: 2} == {&#x27;pear&#x27;: 3}\n  Differing items:"
    )
