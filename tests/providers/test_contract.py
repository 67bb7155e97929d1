"""One provider contract, every SCM: each platform's provider against its loopback fake.

A platform joins by adding a ``Harness`` (how to build its provider and read its fake) and
its name to ``PLATFORMS``; every test below then runs against it unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from providers.azure_devops.provider import AzureDevOpsProvider
from providers.base import (
    AnswersCommands,
    AnswersRefusedCommands,
    AuthFailed,
    CiProvider,
    CommentBody,
    CommitStatus,
    Conclusion,
    PublishResult,
    RateLimited,
    RerunsPipelines,
    StatusState,
    TooLarge,
    comment_marker,
)
from providers.context import CiContext
from providers.events import parse_command
from providers.github import GithubProvider
from providers.gitlab.provider import GitlabProvider
from tests.fakes import azure_devops as fake_azure_module
from tests.fakes import github as fake_github_module
from tests.fakes import gitlab as fake_gitlab_module
from tests.fakes.azure_devops import FakeAzureDevOps
from tests.fakes.github import FakeGithub
from tests.fakes.gitlab import FakeGitlab
from tests.providers.azure_devops import conftest as azure
from tests.providers.azure_devops.conftest import (
    azure_provider,
    azure_server,
    azure_shared,
    fake_azure,
)
from tests.providers.conftest import (
    BOT_LOGIN,
    GITLAB_BOT,
    GITLAB_MR,
    GITLAB_ORG,
    GITLAB_PROJECT,
    OWNER,
    REPOSITORY,
    SHA,
)

# Azure's fixtures live with its provider tests; imported, pytest finds them here too.
__all__ = ["azure_provider", "azure_server", "azure_shared", "fake_azure"]
PLATFORMS = ["github", "gitlab", "azure"]
BAD_TOKEN = "glpat-NotTheRightOne0000" + "x" * 8
MARKER = comment_marker("tests")


@dataclass
class Harness:
    """What the contract needs of one platform: a provider, a context, and its fake's state."""

    platform: str
    label: str  # how errors name the platform
    provider: CiProvider
    bad_token_provider: Callable[[], CiProvider]
    ctx: CiContext
    # Platform states of our status for ctx.sha, in the order they were entered.
    status_history: Callable[[], list[str]]
    # The platform's states in lifecycle order, and the final one for a failure.
    lifecycle: tuple[str, ...]
    failed_state: str
    status_description: Callable[[], str | None]
    our_comments: Callable[[], list[str]]
    delete_comment: Callable[[PublishResult], None]
    comment_key: str
    inject_server_errors: Callable[[int], None]
    inject_rate_limit: Callable[[int], None]
    writes: Callable[[], int]
    org: str  # the organisation label errors must name
    # A failed pipeline of ctx.repository in the fake (its id), and the ids the fake saw re-run.
    failed_pipeline: Callable[[], str]
    reruns: Callable[[], list[str]]
    # Whether the SCM re-runs a failed pipeline under its own id and attempt (GitHub numbers
    # a re-run as the next attempt: not in place).
    reruns_in_place: bool


def _github(
    app_provider: Callable[..., GithubProvider],
    token_provider: Callable[..., GithubProvider],
    fake: FakeGithub,
) -> Harness:
    pr = 12

    def history() -> list[str]:
        return [
            state for run in fake.check_runs.values() if run.head_sha == SHA for state in run.states
        ]

    def delete(result: PublishResult) -> None:
        del fake.comments[int(result.ids["comment_id"])]

    return Harness(
        platform="github",
        label="GitHub",
        provider=app_provider(),
        bad_token_provider=lambda: token_provider(token="ghp_" + BAD_TOKEN, org=OWNER),
        ctx=CiContext(source="github", repository=REPOSITORY, sha=SHA, pr=pr),
        status_history=history,
        lifecycle=("queued", "in_progress", "completed"),
        failed_state="completed",
        status_description=lambda: None,  # check runs carry a summary, not a description
        our_comments=lambda: [
            c.body for c in fake.issue_comments(REPOSITORY, pr) if c.user == BOT_LOGIN
        ],
        delete_comment=delete,
        comment_key="comment_id",
        inject_server_errors=lambda n: fake.inject(
            fake_github_module.Fault(kind="server_error", times=n, path=r".*/check-runs.*")
        ),
        inject_rate_limit=lambda seconds: fake.inject(
            fake_github_module.Fault(kind="primary_rate_limit", retry_after=seconds)
        ),
        writes=lambda: len(fake.writes()),
        org=OWNER,
        failed_pipeline=lambda: "30433642",
        reruns=lambda: [str(run) for repo, run in fake.reruns if repo == REPOSITORY],
        reruns_in_place=False,
    )


def _gitlab(build: Callable[..., GitlabProvider], fake: FakeGitlab) -> Harness:
    pipeline = fake.add_pipeline(GITLAB_PROJECT, SHA)

    def history() -> list[str]:
        return [s for status in fake.commit_statuses(GITLAB_PROJECT, SHA) for s in status.history]

    def description() -> str | None:
        statuses = fake.commit_statuses(GITLAB_PROJECT, SHA)
        return statuses[-1].description if statuses else None

    def delete(result: PublishResult) -> None:
        del fake.notes[int(result.ids["note_id"])]

    return Harness(
        platform="gitlab",
        label="GitLab",
        provider=build(),
        bad_token_provider=lambda: build(token=BAD_TOKEN),
        ctx=CiContext(
            source="gitlab",
            repository=GITLAB_PROJECT,
            sha=SHA,
            pr=GITLAB_MR,
            pipeline_id=str(pipeline),
        ),
        status_history=history,
        lifecycle=("pending", "running", "success", "failed", "canceled"),
        failed_state="failed",
        status_description=description,
        our_comments=lambda: [
            n.body for n in fake.mr_notes(GITLAB_PROJECT, GITLAB_MR) if n.author == GITLAB_BOT
        ],
        delete_comment=delete,
        comment_key="note_id",
        inject_server_errors=lambda n: fake.inject(
            fake_gitlab_module.Fault("server_error", times=n)
        ),
        inject_rate_limit=lambda seconds: fake.inject(
            fake_gitlab_module.Fault("rate_limit", retry_after=seconds)
        ),
        writes=lambda: len(fake.writes()),
        org=GITLAB_ORG,
        failed_pipeline=lambda: str(fake.add_pipeline(GITLAB_PROJECT, SHA)),
        reruns=lambda: [str(p) for p in fake.pipeline_retries],
        reruns_in_place=True,
    )


def _azure(build: Callable[..., AzureDevOpsProvider], fake: FakeAzureDevOps) -> Harness:
    key = (azure.REPOSITORY.lower(), azure.PR)

    def ours() -> list[str]:
        return [
            t.comments[0].content
            for t in fake.pr_threads(azure.REPOSITORY, azure.PR)
            if t.comments[0].author.id == azure.BOT.id and not t.comments[0].is_deleted
        ]

    def description() -> str | None:
        statuses = fake.pr_statuses.get(key, [])
        return statuses[-1]["description"] if statuses else None

    def delete(result: PublishResult) -> None:
        fake.delete_first_comment(azure.REPOSITORY, azure.PR, int(result.ids["thread_id"]))

    def failed_build() -> str:
        fake.add_build(
            azure.REPOSITORY, 812, source_version=azure.SHA, result="failed", stages={"T": "failed"}
        )
        return "812"

    return Harness(
        platform="azure",
        label="Azure DevOps",
        provider=build(),
        bad_token_provider=lambda: build(token=BAD_TOKEN),
        ctx=CiContext(source="azure", repository=azure.REPOSITORY, sha=azure.SHA, pr=azure.PR),
        status_history=lambda: [s["state"] for s in fake.pr_statuses.get(key, [])],
        # A PR status is pending until it ends; queued and in progress are both "pending".
        lifecycle=("pending", "succeeded", "failed", "error"),
        failed_state="failed",
        status_description=description,
        our_comments=ours,
        delete_comment=delete,
        comment_key="thread_id",  # a deleted report's thread stays, soft-deleted
        inject_server_errors=lambda n: fake.inject(
            fake_azure_module.Fault("server_error", times=n)
        ),
        inject_rate_limit=lambda seconds: fake.inject(
            fake_azure_module.Fault("throttled", retry_after=seconds, reset_in=seconds)
        ),
        writes=lambda: len(fake.writes()),
        org=azure.ORG,
        failed_pipeline=failed_build,
        reruns=lambda: [str(build) for _, build, _ in fake.stage_retries],
        reruns_in_place=True,
    )


@pytest.fixture(params=PLATFORMS)
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "github":
        return _github(
            request.getfixturevalue("app_provider"),
            request.getfixturevalue("token_provider"),
            request.getfixturevalue("fake_github"),
        )
    if request.param == "azure":
        return _azure(
            request.getfixturevalue("azure_provider"), request.getfixturevalue("fake_azure")
        )
    return _gitlab(
        request.getfixturevalue("gitlab_provider"), request.getfixturevalue("fake_gitlab")
    )


def _status(state: StatusState, conclusion: Conclusion | None = None, **extra: str) -> CommitStatus:
    return CommitStatus(
        state=state,
        name="aac / tests",
        description=extra.get("description", f"tests {state.value}"),
        conclusion=conclusion,
        details_url="https://aac.example.com/cycles/7",
        external_id="7",
    )


def _report(text: str) -> CommentBody:
    return CommentBody(suite="tests", body=f"{MARKER}\n## aac report\n{text}")


# ---------------------------------------------------------------------------------------
# Statuses
# ---------------------------------------------------------------------------------------
async def test_status_moves_through_legal_states(harness: Harness) -> None:
    previous: PublishResult | None = None
    for state, conclusion in (
        (StatusState.QUEUED, None),
        (StatusState.IN_PROGRESS, None),
        (StatusState.IN_PROGRESS, None),  # a repeated state is not an error
        (StatusState.COMPLETED, Conclusion.FAILURE),
    ):
        previous = await harness.provider.update_commit_status(
            harness.ctx, _status(state, conclusion), previous=previous
        )
        assert previous.succeeded, previous.reason

    history = harness.status_history()
    ranks = [harness.lifecycle.index(state) for state in history]
    assert ranks == sorted(ranks), history
    assert history[0] == harness.lifecycle[0]
    assert history[-1] == harness.failed_state


async def test_status_description_stays_within_the_limit(harness: Harness) -> None:
    limit = harness.provider.limits.status_description_chars
    await harness.provider.update_commit_status(
        harness.ctx, _status(StatusState.QUEUED, description="x" * (limit * 3))
    )
    description = harness.status_description()
    if description is None:
        pytest.skip(f"{harness.platform} publishes no status description here")
    assert 0 < len(description) <= limit


# ---------------------------------------------------------------------------------------
# The sticky comment
# ---------------------------------------------------------------------------------------
async def test_comment_created_once_then_edited_then_recreated(harness: Harness) -> None:
    provider = harness.provider
    first = await provider.post_comment_to_pr(harness.ctx, _report("run 1"))
    second = await provider.post_comment_to_pr(harness.ctx, _report("run 2"), previous=first)
    assert second.ids[harness.comment_key] == first.ids[harness.comment_key]
    assert harness.our_comments() == [f"{MARKER}\n## aac report\nrun 2"]

    # Without the stored id, the marker among our own comments finds it.
    third = await provider.post_comment_to_pr(harness.ctx, _report("run 3"))
    assert third.ids[harness.comment_key] == first.ids[harness.comment_key]
    assert len(harness.our_comments()) == 1

    harness.delete_comment(third)
    fourth = await provider.post_comment_to_pr(harness.ctx, _report("run 4"), previous=third)
    assert fourth.ids[harness.comment_key] != third.ids[harness.comment_key]
    assert harness.our_comments() == [f"{MARKER}\n## aac report\nrun 4"]


async def test_the_marker_is_added_when_the_body_lacks_it(harness: Harness) -> None:
    await harness.provider.post_comment_to_pr(harness.ctx, CommentBody(suite="tests", body="a"))
    await harness.provider.post_comment_to_pr(harness.ctx, CommentBody(suite="tests", body="b"))
    assert harness.our_comments() == [f"{MARKER}\nb"]


async def test_comment_bodies_stay_within_the_limit(harness: Harness) -> None:
    limit = harness.provider.limits.comment_chars
    head = f"{MARKER}\n"
    exact = CommentBody(suite="tests", body=head + "y" * (limit - len(head)))
    await harness.provider.post_comment_to_pr(harness.ctx, exact)
    assert [len(body) for body in harness.our_comments()] == [limit]

    before = harness.writes()
    with pytest.raises(TooLarge) as refused:
        await harness.provider.post_comment_to_pr(
            harness.ctx, CommentBody(suite="tests", body=exact.body + "z")
        )
    assert harness.writes() == before, "an oversized body must not be sent"
    assert f"of {limit + 1:,} characters exceeds {harness.label}" in str(refused.value)


# ---------------------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------------------
async def test_server_errors_are_retried(harness: Harness) -> None:
    harness.inject_server_errors(2)
    started = time.monotonic()
    result = await harness.provider.update_commit_status(harness.ctx, _status(StatusState.QUEUED))
    assert result.succeeded
    assert time.monotonic() - started < 3, "retries back off briefly, never for a long wait"
    assert harness.status_history() == [harness.lifecycle[0]]


async def test_rate_limit_reschedules_without_sleeping(harness: Harness) -> None:
    harness.inject_rate_limit(600)
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        await harness.provider.post_comment_to_pr(harness.ctx, _report("run 1"))
    assert time.monotonic() - started < 3, "a rate limit must be raised, not slept on"
    expected = datetime.now(UTC) + timedelta(seconds=600)
    assert abs((caught.value.retry_at - expected).total_seconds()) < 5
    assert harness.our_comments() == []


async def test_bad_token_is_a_typed_error_without_the_token(harness: Harness) -> None:
    provider = harness.bad_token_provider()
    with pytest.raises(AuthFailed) as caught:
        await provider.post_comment_to_pr(harness.ctx, _report("run 1"))
    text = f"{caught.value} {caught.value!r}"
    assert harness.label in text
    assert BAD_TOKEN not in text
    assert BAD_TOKEN not in repr(provider)


async def test_bad_token_error_names_the_organisation(harness: Harness) -> None:
    with pytest.raises(AuthFailed, match=f"organisation {harness.org}"):
        await harness.bad_token_provider().update_commit_status(
            harness.ctx, _status(StatusState.QUEUED)
        )


# ---------------------------------------------------------------------------------------
# /aac rerun
# ---------------------------------------------------------------------------------------
async def test_a_failed_pipeline_is_rerun_through_the_sdk(harness: Harness) -> None:
    provider = harness.provider
    assert isinstance(provider, RerunsPipelines), f"{harness.platform} cannot re-run pipelines"
    pipeline = harness.failed_pipeline()
    in_place = await provider.rerun_pipeline(harness.ctx.repository, pipeline)
    assert harness.reruns() == [pipeline]
    assert in_place is harness.reruns_in_place  # only then does the core mark its cycle


async def test_a_refused_command_is_answered_on_the_change(harness: Harness) -> None:
    provider = harness.provider
    if not isinstance(provider, AnswersRefusedCommands):
        pytest.skip(f"{harness.platform} does not reply to refused commands")
    await provider.refuse_command(harness.ctx, "drive-by", "approve")
    [reply] = harness.our_comments()
    assert "drive-by" in reply
    assert "`/aac approve`" in reply  # the command refused, not another
    assert "rerun" not in reply
    assert parse_command(reply) is None  # the bot's reply is never read as a command
    assert MARKER not in reply  # nor as the sticky report


async def test_an_answered_command_gets_its_reply_on_the_change(harness: Harness) -> None:
    provider = harness.provider
    assert isinstance(provider, AnswersCommands), f"{harness.platform} cannot answer commands"
    await provider.answer_command(harness.ctx, "maintainer", "no suite `nightly` here")
    replies = harness.our_comments()
    assert any("no suite `nightly` here" in reply for reply in replies)
    assert all(MARKER not in reply for reply in replies)  # never taken for the sticky report
