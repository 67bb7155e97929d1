"""Check runs (App) and commit statuses (token), through gidgethub against the fake GitHub."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.runtime import Runtime
from providers.base import (
    Annotation,
    AnnotationLevel,
    CommitStatus,
    Conclusion,
    RateLimited,
    RequestedAction,
    StatusState,
    Transient,
)
from providers.context import CiContext
from providers.github.provider import GithubProvider, GithubShared
from storage.db import create_engine
from storage.write_slots import WriteSlots
from tests.fakes.github import FakeGithub, Fault
from tests.providers.conftest import REPOSITORY, SHA

CTX = CiContext(source="github", repository=REPOSITORY, sha=SHA, pr=7)
CHECK_RUNS = r"/repos/octo-org/widgets/check-runs(/\d+)?"


def _status(state: StatusState, **extra: object) -> CommitStatus:
    fields: dict[str, object] = {
        "state": state,
        "name": "aac / tests",
        "description": "3 failed, 97 passed",
        "external_id": "cycle-42",
        "details_url": "https://aac.example.com/cycles/42",
        **extra,
    }
    return CommitStatus(**fields)  # type: ignore[arg-type]


def _annotations(count: int) -> tuple[Annotation, ...]:
    return tuple(
        Annotation(
            path=f"src/mod_{i}.py",
            start_line=i + 1,
            end_line=i + 1,
            level=AnnotationLevel.FAILURE,
            message=f"test_{i} failed",
            title=f"test_{i}",
        )
        for i in range(count)
    )


def _completed(annotations: int = 120) -> CommitStatus:
    return _status(
        StatusState.COMPLETED,
        conclusion=Conclusion.FAILURE,
        title="3 tests failed",
        summary="## Summary\nflaky network",
        annotations=_annotations(annotations),
        actions=(RequestedAction("Re-run failed", "Run the failed tests again", "rerun"),),
    )


def _annotation_requests(fake: FakeGithub) -> list[int]:
    return [
        len(r.body["output"]["annotations"])
        for r in fake.writes()
        if r.status in (200, 201) and "annotations" in (r.body or {}).get("output", {})
    ]


async def test_create_update_complete_with_120_annotations(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider()
    assert provider.capabilities.check_runs
    queued = await provider.update_commit_status(CTX, _status(StatusState.QUEUED))
    running = await provider.update_commit_status(
        CTX, _status(StatusState.IN_PROGRESS), previous=queued
    )
    done = await provider.update_commit_status(CTX, _completed(), previous=running)

    assert queued.kind == "check_run"
    assert queued.ids == running.ids == done.ids
    (run,) = fake_github.check_runs.values()
    assert str(run.id) == done.ids["check_run_id"]
    assert done.url == f"https://github.com/{REPOSITORY}/runs/{run.id}"
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert run.completed_at is not None
    assert run.external_id == "cycle-42"
    assert run.details_url == "https://aac.example.com/cycles/42"
    assert run.output["title"] == "3 tests failed"
    assert [a["message"] for a in run.annotations] == [f"test_{i} failed" for i in range(120)]
    assert run.actions[0]["identifier"] == "rerun"
    assert _annotation_requests(fake_github) == [50, 50, 20]
    states = [r.body["status"] for r in fake_github.writes() if "status" in (r.body or {})]
    assert states == ["queued", "in_progress", "completed"]


async def test_new_run_carries_first_chunk_in_the_create(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    await app_provider().update_commit_status(CTX, _completed(annotations=60))
    creates = [r for r in fake_github.writes() if r.method == "POST" and "check-runs" in r.path]
    assert len(creates) == 1
    assert len(creates[0].body["output"]["annotations"]) == 50
    assert _annotation_requests(fake_github) == [50, 10]
    (run,) = fake_github.check_runs.values()
    assert len(run.annotations) == 60


async def test_unknown_id_is_found_by_name_and_external_id(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider()
    first = await provider.update_commit_status(CTX, _status(StatusState.IN_PROGRESS))
    # A lost PublishResult: the next job knows nothing, yet must not duplicate the run.
    again = await provider.update_commit_status(CTX, _completed(annotations=3), previous=None)
    assert again.ids == first.ids
    assert len(fake_github.check_runs) == 1


async def test_runs_of_other_cycles_are_left_alone(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider()
    old = await provider.update_commit_status(CTX, _status(StatusState.IN_PROGRESS))
    new = await provider.update_commit_status(
        CTX, _status(StatusState.IN_PROGRESS, external_id="cycle-43")
    )
    assert old.ids != new.ids
    assert {r.external_id for r in fake_github.check_runs.values()} == {"cycle-42", "cycle-43"}


async def test_secondary_limit_on_create_writes_nothing(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    fake_github.inject(
        Fault("secondary_rate_limit", method="POST", path=CHECK_RUNS, retry_after=75)
    )
    # A fixed clock makes retry_at exact.
    provider = app_provider(shared=GithubShared(pacing_seconds=0.01, now=lambda: now))
    with pytest.raises(RateLimited) as raised:
        await provider.update_commit_status(CTX, _completed())
    assert raised.value.retry_at == now + timedelta(seconds=75)
    assert fake_github.check_runs == {}
    assert [r.status for r in fake_github.writes()].count(403) == 1  # not retried in-call


async def test_rescheduled_after_limit_mid_annotations_never_duplicates(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider()
    running = await provider.update_commit_status(CTX, _status(StatusState.IN_PROGRESS))
    # The state PATCH (with annotations 1-50) lands; the next chunk hits the limit.
    fake_github.inject(Fault("secondary_rate_limit", method="PATCH", path=CHECK_RUNS, after=1))
    with pytest.raises(RateLimited):
        await provider.update_commit_status(CTX, _completed(), previous=running)
    (run,) = fake_github.check_runs.values()
    assert len(run.annotations) == 50
    # The worker reschedules with the last stored result, which predates the failure.
    done = await provider.update_commit_status(CTX, _completed(), previous=running)
    assert done.ids == running.ids
    assert [a["message"] for a in run.annotations] == [f"test_{i} failed" for i in range(120)]


async def test_primary_limit_raises_with_reset_time(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    fake_github.inject(Fault("primary_rate_limit", path=r".*/check-runs", retry_after=600))
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as raised:
        await app_provider().update_commit_status(CTX, _completed())
    expected = before + timedelta(seconds=600)
    assert abs((raised.value.retry_at - expected).total_seconds()) <= 2
    assert fake_github.check_runs == {}


async def test_server_errors_are_retried_then_succeed(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    fake_github.inject(Fault("server_error", method="POST", path=CHECK_RUNS, times=2))
    result = await app_provider(max_attempts=3).update_commit_status(CTX, _completed(5))
    assert result.succeeded
    assert len(fake_github.check_runs) == 1
    assert [r.status for r in fake_github.writes()].count(502) == 2


async def test_persistent_server_errors_become_transient(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    fake_github.inject(Fault("server_error", method="POST", path=CHECK_RUNS, times=10, status=503))
    with pytest.raises(Transient):
        await app_provider(max_attempts=3).update_commit_status(CTX, _completed(5))
    assert [r.status for r in fake_github.writes() if r.status == 503] == [503, 503, 503]
    assert fake_github.check_runs == {}


async def test_lost_annotation_response_is_resynced_not_resent(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider()
    running = await provider.update_commit_status(CTX, _status(StatusState.IN_PROGRESS))
    # GitHub applies the second chunk but the response is lost (502): the retry re-reads
    # annotations_count instead of trusting its own bookkeeping, so nothing is sent twice.
    fake_github.inject(
        Fault("server_error", method="PATCH", path=CHECK_RUNS, after=1, applied=True)
    )
    await provider.update_commit_status(CTX, _completed(), previous=running)
    (run,) = fake_github.check_runs.values()
    assert [a["message"] for a in run.annotations] == [f"test_{i} failed" for i in range(120)]
    assert _annotation_requests(fake_github) == [50, 20]  # plus the lost 50, answered 502


async def test_lost_create_response_does_not_duplicate_the_run(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    fake_github.inject(Fault("server_error", method="POST", path=CHECK_RUNS, applied=True))
    result = await app_provider().update_commit_status(CTX, _completed(annotations=70))
    (run,) = fake_github.check_runs.values()
    assert result.ids == {"check_run_id": str(run.id)}
    assert len(run.annotations) == 70


async def test_timeouts_become_transient(
    fake_github: FakeGithub, github_app_key: tuple[str, str]
) -> None:
    fake_github.inject(Fault("slow", path=r".*/check-runs", times=3, delay=0.5))
    async with httpx.AsyncClient(timeout=0.15) as client:
        provider = GithubProvider.for_app(
            app_id=4242,
            private_key=github_app_key[0],
            installation_id=77,
            http=client,
            shared=GithubShared(pacing_seconds=0.0),
            api_url=fake_github.url,
            backoff_seconds=0.0,
        )
        with pytest.raises(Transient, match="timed out"):
            await provider.update_commit_status(CTX, _completed(1))


async def test_writes_are_paced_per_installation(
    fake_github: FakeGithub, app_provider: Callable[..., GithubProvider]
) -> None:
    interval = 0.2
    provider = app_provider(shared=GithubShared(pacing_seconds=interval))
    await provider.update_commit_status(CTX, _completed(annotations=120))
    writes = [r for r in fake_github.writes() if "check-runs" in r.path]
    assert len(writes) == 3
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(writes)]
    assert min(gaps) >= interval


async def test_writes_are_paced_per_installation_across_processes(
    runtime: Runtime, fake_github: FakeGithub, app_provider: Callable[..., GithubProvider]
) -> None:
    """Two processes (own caches, own pacers, own connection pools) publishing for the same
    installation at once still write one at a time, a pacing interval apart."""
    interval = 0.2
    other_engine = create_engine(runtime.settings.database_url)

    def process(engine: AsyncEngine) -> GithubProvider:
        shared = GithubShared(pacing_seconds=interval, write_slots=WriteSlots(engine))
        return app_provider(shared=shared)

    try:
        await asyncio.gather(
            process(runtime.engine).update_commit_status(CTX, _completed(annotations=60)),
            process(other_engine).update_commit_status(CTX, _completed(annotations=60)),
        )
    finally:
        await other_engine.dispose()
    writes = [r for r in fake_github.writes() if "check-runs" in r.path]
    assert len(writes) == 4
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(writes)]
    assert min(gaps) >= interval


async def test_token_mode_publishes_commit_status(
    token_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = token_provider()
    assert not provider.capabilities.check_runs
    long = "x" * 300
    pending = await provider.update_commit_status(
        CTX, _status(StatusState.IN_PROGRESS, description=long)
    )
    done = await provider.update_commit_status(CTX, _completed(), previous=pending)

    assert pending.kind == done.kind == "commit_status"
    assert [s["state"] for s in fake_github.statuses] == ["pending", "failure"]
    assert all(len(s["description"]) <= 140 for s in fake_github.statuses)
    assert fake_github.statuses[0]["description"].endswith("…")
    assert {s["context"] for s in fake_github.statuses} == {"aac / tests"}
    assert fake_github.statuses[1]["target_url"] == "https://aac.example.com/cycles/42"
    assert not fake_github.check_runs
    assert {r.credential for r in fake_github.requests} == {"pat"}


@pytest.mark.parametrize(
    ("conclusion", "state"),
    [
        (Conclusion.SUCCESS, "success"),
        (Conclusion.NEUTRAL, "success"),
        (Conclusion.SKIPPED, "success"),
        (Conclusion.FAILURE, "failure"),
        (Conclusion.TIMED_OUT, "error"),
        (Conclusion.CANCELLED, "error"),
    ],
)
async def test_commit_status_state_mapping(
    token_provider: Callable[..., GithubProvider],
    fake_github: FakeGithub,
    conclusion: Conclusion,
    state: str,
) -> None:
    await token_provider().update_commit_status(
        CTX, _status(StatusState.COMPLETED, conclusion=conclusion)
    )
    assert fake_github.statuses[-1]["state"] == state
