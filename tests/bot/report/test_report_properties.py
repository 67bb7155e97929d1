"""For ANY report model, every rendered body fits its limit and stays well formed."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_checks import assert_well_formed

from bot.analysis.model import ClusterExplanation, LlmSummary, Verdict
from bot.analysis.verdicts import Deltas
from bot.report.check_run import render_check_run
from bot.report.comment import Dialect, render_comment
from bot.report.model import (
    CycleIdentity,
    CycleStatus,
    ReportCluster,
    ReportModel,
    ReportTest,
    Totals,
)
from bot.report.status import render_status_description
from bot.results.model import TestCaseResult, TestStatus
from providers.base import (
    AZURE_LIMITS,
    GITHUB_LIMITS,
    GITLAB_LIMITS,
    PlatformLimits,
    comment_marker,
)

NASTY = [
    "```",
    "``````````",
    "~~~",
    "<details>",
    "</details>",
    "<summary>",
    "<script>alert(1)</script>",
    "-->",
    "<!-- aac:report:x -->",
    "\x00",
    "\x1b[31m",
    "\r\n",
    "\n",
    "@here @all",
    "🔥🧪",
    "é",
    "\u202e",
    "[x](javascript:alert(1))",
    "| a | b |",
    "# heading",
    "1. item",
    "    indented",
    "*",
    "_",
    "\\",
    "$$",
]
piece = st.one_of(st.text(max_size=12), st.sampled_from(NASTY))
text = st.lists(piece, max_size=8).map("".join)
# Huge values without making hypothesis generate megabytes: repeat a short nasty text.
big = st.one_of(text, st.builds(lambda s, n: (s or "x") * n, text, st.integers(0, 5_000)))
optional = st.one_of(st.none(), text)
url = st.one_of(
    st.none(),
    st.sampled_from(["https://ci.example.com/p/1", "javascript:alert(1)", "http://x/(a)<b>"]),
    text,
)


@st.composite
def results(draw: st.DrawFn) -> TestCaseResult:
    return TestCaseResult(
        name=draw(big),
        classname=draw(text),
        file=draw(optional),
        line=draw(st.one_of(st.none(), st.integers(-5, 10**9))),
        status=draw(st.sampled_from(list(TestStatus))),
        duration=draw(st.floats(0, 1e6)),
        message=draw(st.one_of(st.none(), big)),
        failure_type=draw(optional),
        stack_trace=draw(st.one_of(st.none(), big)),
    )


@st.composite
def report_tests(draw: st.DrawFn) -> ReportTest:
    return ReportTest(
        result=draw(results()),
        verdict=draw(st.sampled_from(list(Verdict))),
        reason=draw(text),
        flip_rate=draw(st.one_of(st.none(), st.floats(0, 1))),
    )


@st.composite
def clusters(draw: st.DrawFn) -> ReportCluster:
    tests = draw(st.lists(report_tests(), min_size=1, max_size=4))
    # Many tests per cluster cheaply: repeat the drawn ones.
    tests = tests * draw(st.integers(1, 12))
    explanation = draw(
        st.one_of(
            st.none(),
            st.builds(ClusterExplanation, text, big, text, big, st.floats(-1, 2)),
        )
    )
    return ReportCluster(
        signature=draw(text),
        exception_type=draw(optional),
        message_pattern=draw(big),
        top_frames=tuple(draw(st.lists(text, max_size=3))),
        tests=tuple(tests),
        explanation=explanation,
        # Multi-line, hostile, huge: shown in headings and fences.
        example_message=draw(st.one_of(big, st.lists(big, max_size=6).map("\n".join))),
        own_frames=tuple(draw(st.lists(text, max_size=3))),
    )


@st.composite
def models(draw: st.DrawFn) -> ReportModel:
    cluster_list = draw(st.lists(clusters(), max_size=6))
    cluster_list = cluster_list * draw(st.integers(1, 10))
    ids = st.lists(text, max_size=5).map(lambda xs: tuple(xs) * 100)
    deltas = draw(
        st.one_of(
            st.none(),
            st.builds(
                Deltas,
                st.booleans(),
                optional,
                st.just({}),
                ids,
                ids,
                ids,
                ids,
                st.one_of(st.none(), st.floats(-1e6, 1e6)),
            ),
        )
    )
    llm = draw(st.one_of(st.none(), st.builds(LlmSummary, big, st.just([]), optional)))
    return ReportModel(
        identity=CycleIdentity(
            repository=draw(text),
            sha=draw(text),
            short_sha=draw(text),
            suite=draw(st.from_regex(r"[a-z0-9_.-]{1,20}", fullmatch=True)),
            pr=draw(st.one_of(st.none(), st.integers(1, 10**6))),
            pipeline_url=draw(url),
            report_url=draw(url),
            cycle_id=draw(optional),
        ),
        status=draw(st.sampled_from(list(CycleStatus))),
        totals=Totals(*draw(st.lists(st.integers(0, 10**7), min_size=6, max_size=6))),
        duration=draw(st.one_of(st.none(), st.floats(allow_nan=True))),
        clusters=tuple(cluster_list),
        flaky=tuple(draw(st.lists(report_tests(), max_size=3)) * draw(st.integers(1, 30))),
        passed_tests=tuple(draw(st.lists(big, max_size=3)) * draw(st.integers(1, 500))),
        deltas=deltas,
        has_history=draw(st.booleans()),
        llm=llm,
        llm_note=draw(optional),
        infra_reason=draw(optional),
    )


SMALL = PlatformLimits(
    comment_chars=2_000,
    status_description_chars=40,
    check_summary_bytes=1_500,
    check_text_bytes=1_000,
    annotation_message_bytes=300,
    check_title_chars=30,
)
COMMENT_TARGETS = [
    (Dialect.GITHUB, GITHUB_LIMITS),
    (Dialect.GITLAB, GITLAB_LIMITS),
    (Dialect.AZURE, AZURE_LIMITS),
    (Dialect.GITHUB, SMALL),
    (Dialect.AZURE, SMALL),
]


def _size(s: str) -> int:
    return len(s.encode("utf-8"))


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    models(),
    st.sampled_from(COMMENT_TARGETS),
    st.sampled_from([GITHUB_LIMITS, SMALL]),
)
def test_every_rendering_fits_and_is_well_formed(
    model: ReportModel, target: tuple[Dialect, PlatformLimits], check_limits: PlatformLimits
) -> None:
    # One comment target and one check-run budget per example keeps the runtime bounded;
    # over 100 examples every target is exercised many times.
    dialect, limits = target
    comment = render_comment(model, dialect, limits)
    assert _size(comment.body) <= limits.comment_chars
    assert comment.body.startswith(comment_marker(model.identity.suite))
    assert_well_formed(comment.body, details_allowed=dialect is not Dialect.AZURE)

    check = render_check_run(model, check_limits)
    assert check.summary is not None
    assert check_limits.check_summary_bytes is not None
    assert check_limits.check_text_bytes is not None
    assert _size(check.summary) <= check_limits.check_summary_bytes
    assert_well_formed(check.summary)
    if check.text is not None:
        assert _size(check.text) <= check_limits.check_text_bytes
        assert_well_formed(check.text)
    assert check.title is not None
    assert check_limits.check_title_chars is not None
    assert _size(check.title) <= check_limits.check_title_chars
    assert len(check.annotations) <= 500
    for a in check.annotations:
        assert a.start_line >= 1
        assert not a.path.startswith("/")
        assert check_limits.annotation_message_bytes is not None
        assert _size(a.message) <= check_limits.annotation_message_bytes
    assert _size(check.description) <= check_limits.status_description_chars

    for max_chars in (140, 255, 10):
        assert _size(render_status_description(model, max_chars)) <= max_chars
