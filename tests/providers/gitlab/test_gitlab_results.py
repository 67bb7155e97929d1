"""A finished pipeline's results: the test report, else the JUnit files in job artifacts."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from providers.base import CaseOutcome, NotFound, ReportedCase, TooLarge
from providers.gitlab.provider import GitlabProvider
from providers.gitlab.results import junit_jobs, xml_files
from tests.fakes.gitlab import FakeGitlab
from tests.providers.conftest import GITLAB_PROJECT, SHA

FIXTURES = Path(__file__).parents[2] / "fixtures" / "gitlab"
JUNIT = (
    b'<?xml version="1.0"?>'
    b'<testsuite name="unit" tests="1"><testcase name="t" classname="c"/></testsuite>'
)


def _report() -> dict[str, object]:
    data: dict[str, object] = json.loads((FIXTURES / "test_report.json").read_text())
    return data


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_the_test_report_becomes_reported_cases(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    pipeline = fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA, test_report=_report())
    fake_gitlab.add_job(pipeline, "rspec", archive=_zip({"rspec.xml": JUNIT}))

    results = await gitlab_provider().pipeline_results(GITLAB_PROJECT, pipeline)

    assert results.origin == "test_report"
    assert results.files == ()
    assert [(c.suite, c.name, c.outcome) for c in results.cases] == [
        ("rspec", "Security Reports can create an auto-remediation MR", CaseOutcome.PASSED),
        ("rspec", "Widgets are counted", CaseOutcome.FAILED),
        ("pytest", "test_slow", CaseOutcome.SKIPPED),
        ("pytest", "test_setup", CaseOutcome.ERROR),
    ]
    assert results.cases[1] == ReportedCase(
        suite="rspec",
        name="Widgets are counted",
        classname="widgets_spec",
        outcome=CaseOutcome.FAILED,
        duration_seconds=0.5,
        message="expected: 3\n     got: 2",
        trace="./spec/widgets_spec.rb:12:in `block (2 levels) in <top (required)>'",
        file="spec/widgets_spec.rb",
    )
    assert results.cases[2].file is None
    # The summary said there were cases, so the full report was read; no artifact was.
    paths = [r.path.rsplit("/", 1)[-1] for r in fake_gitlab.requests]
    assert paths == ["test_report_summary", "test_report"]


async def test_an_empty_report_falls_back_to_the_junit_artifacts(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    pipeline = fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA)
    fake_gitlab.add_job(
        pipeline,
        "unit",
        archive=_zip({"reports/junit.xml": JUNIT, "coverage.txt": b"91%", "reports/": b""}),
    )
    fake_gitlab.add_job(pipeline, "lint", archive=_zip({"lint.xml": JUNIT}), junit=False)
    fake_gitlab.add_job(pipeline, "no-archive")  # junit report only: not downloadable
    for i in range(25):  # more jobs than one page holds
        fake_gitlab.add_job(pipeline, f"build-{i}", junit=False)
    last = fake_gitlab.add_job(pipeline, "integration", archive=_zip({"it.xml": JUNIT}))

    results = await gitlab_provider().pipeline_results(GITLAB_PROJECT, str(pipeline))

    assert results.origin == "artifacts"
    assert results.cases == ()
    assert [(f.name, f.content) for f in results.files] == [
        ("unit/reports/junit.xml", JUNIT),
        ("integration/it.xml", JUNIT),
    ]
    downloads = [r.path for r in fake_gitlab.requests if r.path.endswith("/artifacts")]
    assert len(downloads) == 2
    assert downloads[-1] == f"/projects/{GITLAB_PROJECT}/jobs/{last}/artifacts"


async def test_no_report_and_no_artifacts_is_empty(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    pipeline = fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA)
    results = await gitlab_provider().pipeline_results(GITLAB_PROJECT, pipeline)
    assert (results.cases, results.files, results.origin) == ((), (), "")


async def test_an_expired_or_oversized_archive_is_skipped(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    pipeline = fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA)
    expired = fake_gitlab.add_job(pipeline, "expired", archive=_zip({"a.xml": JUNIT}))
    del fake_gitlab.artifacts[expired]
    fake_gitlab.add_job(
        pipeline, "huge", archive=_zip({"big.xml": b"<a>" + b" " * 200_000 + b"</a>"})
    )
    fake_gitlab.add_job(pipeline, "fine", archive=_zip({"ok.xml": JUNIT}))

    results = await gitlab_provider(max_artifact_bytes=100_000).pipeline_results(
        GITLAB_PROJECT, pipeline
    )
    assert [f.name for f in results.files] == ["fine/ok.xml"]


async def test_a_vanished_pipeline_is_not_found(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    with pytest.raises(NotFound):
        await gitlab_provider().pipeline_results(GITLAB_PROJECT, 424242)


def test_an_entry_claiming_more_than_the_bound_is_refused_unread() -> None:
    archive = _zip({"big.xml": b"x" * 5000})
    with pytest.raises(TooLarge, match=r"big\.xml of job unit"):
        xml_files(archive, job_name="unit", max_bytes=1000)


def test_an_entry_lying_about_its_size_cannot_inflate_past_the_bound() -> None:
    archive = _zip({"bomb.xml": b"x" * 5000})
    # Rewrite the declared sizes (local header and central directory) to 10 bytes.
    lying = archive.replace((5000).to_bytes(4, "little"), (10).to_bytes(4, "little"))
    assert lying != archive
    files = xml_files(lying, job_name="unit", max_bytes=1000)
    assert all(len(f.content) <= 1000 for f in files)


def test_not_a_zip_yields_nothing() -> None:
    assert xml_files(b"not a zip", job_name="unit", max_bytes=1000) == ()


def test_junit_jobs_need_both_a_report_and_an_archive() -> None:
    jobs = [
        {"id": 1, "name": "a", "artifacts": [{"file_type": "junit"}, {"file_type": "archive"}]},
        {"id": 2, "name": "b", "artifacts": [{"file_type": "junit"}]},
        {"id": 3, "name": "c", "artifacts": [{"file_type": "archive"}]},
        {"id": 4, "name": "d"},
    ]
    assert junit_jobs(jobs) == [(1, "a")]
