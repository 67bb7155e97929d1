"""The ``aac/<suite>`` commit status: joins the cycle's pipeline, follows GitLab's states."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from providers.base import (
    AuthFailed,
    CommitStatus,
    Conclusion,
    NotFound,
    PublishResult,
    StatusState,
)
from providers.context import CiContext
from providers.gitlab.provider import GitlabProvider, gitlab_state, pipeline_id_of, status_json
from tests.fakes.gitlab import REPORTER, FakeGitlab, Fault
from tests.providers.conftest import GITLAB_BOT, GITLAB_ORG, GITLAB_PROJECT, SHA

REPORT_URL = "https://aac.example.com/cycles/9"


def _ctx(**extra: str | int | None) -> CiContext:
    options: dict[str, object] = {"source": "gitlab", "repository": GITLAB_PROJECT, "sha": SHA}
    options.update(extra)
    return CiContext(**options)  # type: ignore[arg-type]


def _status(
    state: StatusState, conclusion: Conclusion | None = None, description: str = "d"
) -> CommitStatus:
    return CommitStatus(
        state=state,
        name="aac / tests",
        description=description,
        conclusion=conclusion,
        details_url=REPORT_URL,
    )


async def test_status_joins_the_cycles_pipeline_and_opens_no_external_one(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    pipeline = fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA)
    result = await gitlab_provider().update_commit_status(
        _ctx(pipeline_id=str(pipeline), ref="feature"), _status(StatusState.QUEUED)
    )

    (status,) = fake_gitlab.commit_statuses(GITLAB_PROJECT, SHA)
    assert (status.name, status.status, status.pipeline_id) == ("aac/tests", "pending", pipeline)
    assert status.target_url == REPORT_URL
    assert fake_gitlab.external_pipelines() == []
    assert result.kind == "commit_status"
    assert result.ids == {
        "name": "aac/tests",
        "sha": SHA,
        "state": "pending",
        "pipeline_id": str(pipeline),
        "status_id": str(status.id),
    }
    (post,) = fake_gitlab.writes()
    assert "ref" not in post.body  # a ref beside pipeline_id could pick another pipeline


async def test_without_a_pipeline_gitlab_opens_one_for_the_ref(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    await gitlab_provider().update_commit_status(_ctx(ref="feature"), _status(StatusState.QUEUED))
    (pipeline,) = fake_gitlab.external_pipelines()
    assert pipeline.ref == "feature"


async def test_a_merge_requests_status_without_a_pipeline_id_joins_its_pipeline(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    """MR pipelines run on refs/merge-requests/<iid>/head: naming the source branch would
    open an external pipeline (and make it the MR's head pipeline)."""
    pipeline = fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA, ref="refs/merge-requests/5/head")
    await gitlab_provider().update_commit_status(
        _ctx(ref="feature", pr=5), _status(StatusState.QUEUED)
    )
    (status,) = fake_gitlab.commit_statuses(GITLAB_PROJECT, SHA)
    assert status.pipeline_id == pipeline
    assert fake_gitlab.external_pipelines() == []
    (post,) = fake_gitlab.writes()
    assert "ref" not in post.body


def test_another_scms_pipeline_id_is_never_attached() -> None:
    github = CiContext(source="github", repository="o/r", sha=SHA, pipeline_id="123")
    assert pipeline_id_of(github) is None
    assert pipeline_id_of(_ctx(pipeline_id="not-a-number")) is None
    assert pipeline_id_of(_ctx(pipeline_id="77")) == 77


@pytest.mark.parametrize(
    ("state", "conclusion", "expected"),
    [
        (StatusState.QUEUED, None, "pending"),
        (StatusState.IN_PROGRESS, None, "running"),
        (StatusState.COMPLETED, Conclusion.SUCCESS, "success"),
        (StatusState.COMPLETED, Conclusion.NEUTRAL, "success"),
        (StatusState.COMPLETED, Conclusion.SKIPPED, "success"),
        (StatusState.COMPLETED, Conclusion.FAILURE, "failed"),
        (StatusState.COMPLETED, Conclusion.TIMED_OUT, "failed"),
        (StatusState.COMPLETED, Conclusion.ACTION_REQUIRED, "failed"),
        (StatusState.COMPLETED, Conclusion.CANCELLED, "canceled"),
        (StatusState.COMPLETED, None, "success"),
    ],
)
def test_state_mapping(state: StatusState, conclusion: Conclusion | None, expected: str) -> None:
    assert gitlab_state(_status(state, conclusion)) == expected


def test_description_is_clipped_to_255_characters() -> None:
    data = status_json(
        _ctx(), _status(StatusState.QUEUED, description="é" * 400), max_description=255
    )
    assert len(data["description"]) == 255
    assert data["description"].endswith("…")


async def test_an_equal_running_state_is_done_not_an_error(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    pipeline = str(fake_gitlab.add_pipeline(GITLAB_PROJECT, SHA))
    provider = gitlab_provider()
    await provider.update_commit_status(
        _ctx(pipeline_id=pipeline), _status(StatusState.IN_PROGRESS)
    )
    # Another worker, knowing nothing of the first call, says "running" again.
    again = await provider.update_commit_status(
        _ctx(pipeline_id=pipeline), _status(StatusState.IN_PROGRESS)
    )

    assert again.succeeded
    assert again.ids["state"] == "running"
    assert again.reason == "already running"
    assert [r.status for r in fake_gitlab.writes()] == [201, 400]
    (status,) = fake_gitlab.commit_statuses(GITLAB_PROJECT, SHA)
    assert status.history == ["pending", "running"]


async def test_going_back_to_pending_keeps_what_gitlab_has(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    provider = gitlab_provider()
    running = await provider.update_commit_status(_ctx(), _status(StatusState.IN_PROGRESS))
    back = await provider.update_commit_status(
        _ctx(), _status(StatusState.QUEUED), previous=running
    )
    assert back.succeeded
    assert back.ids["state"] == "running"
    assert back.ids["status_id"] == running.ids["status_id"]
    assert fake_gitlab.requests[-1].status == 400  # GitLab refused :enqueue from :running
    assert [s.status for s in fake_gitlab.commit_statuses(GITLAB_PROJECT, SHA)] == ["running"]


async def test_a_known_equal_state_sends_nothing(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    provider = gitlab_provider()
    first = await provider.update_commit_status(_ctx(), _status(StatusState.QUEUED))
    again = await provider.update_commit_status(_ctx(), _status(StatusState.QUEUED), previous=first)
    assert again.succeeded
    assert again.ids == first.ids
    assert len(fake_gitlab.writes()) == 1


async def test_a_previous_for_another_commit_is_not_trusted(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    stale = PublishResult(
        True, True, "commit_status", ids={"name": "aac/tests", "sha": "f" * 40, "state": "pending"}
    )
    await gitlab_provider().update_commit_status(
        _ctx(), _status(StatusState.QUEUED), previous=stale
    )
    assert [s.status for s in fake_gitlab.commit_statuses(GITLAB_PROJECT, SHA)] == ["pending"]


async def test_full_lifecycle_ends_in_one_finished_status(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    provider = gitlab_provider()
    result = None
    for state, conclusion in (
        (StatusState.QUEUED, None),
        (StatusState.IN_PROGRESS, None),
        (StatusState.COMPLETED, Conclusion.CANCELLED),
    ):
        result = await provider.update_commit_status(
            _ctx(), _status(state, conclusion), previous=result
        )
    (status,) = fake_gitlab.commit_statuses(GITLAB_PROJECT, SHA)
    assert status.history == ["pending", "running", "canceled"]


async def test_a_pipeline_that_is_not_there_is_not_found(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    with pytest.raises(NotFound, match="404 Pipeline Not Found"):
        await gitlab_provider().update_commit_status(
            _ctx(pipeline_id="999999"), _status(StatusState.QUEUED)
        )


async def test_a_vanished_project_is_not_found(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    with pytest.raises(NotFound, match="404 Project Not Found"):
        await gitlab_provider().update_commit_status(
            _ctx(repository="acme/gone"), _status(StatusState.QUEUED)
        )


async def test_a_reporter_token_may_not_set_statuses(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.add_member(GITLAB_PROJECT, GITLAB_BOT, REPORTER)
    with pytest.raises(AuthFailed, match=f"organisation {GITLAB_ORG}.*403"):
        await gitlab_provider().update_commit_status(_ctx(), _status(StatusState.QUEUED))


async def test_a_status_whose_answer_was_lost_is_retried_safely(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.inject(Fault("server_error", method="POST", applied=True))
    result = await gitlab_provider().update_commit_status(_ctx(), _status(StatusState.IN_PROGRESS))
    # The retry met GitLab's refusal to re-enter "running": the state it kept is reported.
    assert (result.succeeded, result.ids["state"]) == (True, "running")
    (status,) = fake_gitlab.commit_statuses(GITLAB_PROJECT, SHA)
    assert status.history == ["pending", "running"]
