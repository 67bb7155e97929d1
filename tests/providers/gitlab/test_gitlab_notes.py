"""The sticky MR note: one per (MR, suite), edited in place, found only by our own marker."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from providers.base import CommentBody, NotFound, PublishResult, comment_marker
from providers.context import CiContext
from providers.events import parse_command
from providers.gitlab.provider import GitlabProvider, GitlabShared
from tests.fakes.gitlab import FakeGitlab, Fault
from tests.providers.conftest import GITLAB_BOT, GITLAB_MR, GITLAB_PROJECT, GITLAB_TOKEN, SHA

CTX = CiContext(source="gitlab", repository=GITLAB_PROJECT, sha=SHA, pr=GITLAB_MR)
MARKER = comment_marker("tests")


def _report(text: str, suite: str = "tests") -> CommentBody:
    return CommentBody(suite=suite, body=f"{comment_marker(suite)}\n## aac report\n{text}")


def _fill(fake: FakeGitlab, count: int, author: str = "someone") -> None:
    for i in range(count):
        fake.add_note(GITLAB_PROJECT, GITLAB_MR, author, f"note {i}")


async def test_marker_found_on_page_three(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    _fill(fake_gitlab, 230)
    ours = fake_gitlab.add_note(GITLAB_PROJECT, GITLAB_MR, GITLAB_BOT, f"{MARKER}\nold report")
    _fill(fake_gitlab, 10)

    result = await gitlab_provider().post_comment_to_pr(CTX, _report("new"))

    assert result.ids == {"note_id": str(ours), "author": GITLAB_BOT}
    assert fake_gitlab.notes[ours].body.endswith("new")
    assert len(fake_gitlab.mr_notes(GITLAB_PROJECT, GITLAB_MR)) == 241
    listed = [r for r in fake_gitlab.requests if r.method == "GET" and r.path.endswith("/notes")]
    assert [r.query.get("page", "1") for r in listed] == ["1", "2", "3"]
    assert all(r.query.get("per_page") == "100" for r in listed)
    assert [r.method for r in fake_gitlab.writes()] == ["PUT"]


async def test_same_marker_by_another_user_or_a_system_note_is_never_edited(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    impostor = fake_gitlab.add_note(GITLAB_PROJECT, GITLAB_MR, "mallory", f"{MARKER}\nfake")
    system = fake_gitlab.add_note(
        GITLAB_PROJECT, GITLAB_MR, GITLAB_BOT, f"{MARKER}\nmentioned", system=True
    )
    lint = fake_gitlab.add_note(GITLAB_PROJECT, GITLAB_MR, GITLAB_BOT, comment_marker("lint"))
    lookalike = fake_gitlab.add_note(GITLAB_PROJECT, GITLAB_MR, GITLAB_BOT, "## aac report\nx")

    result = await gitlab_provider().post_comment_to_pr(CTX, _report("real"))

    assert result.ids["note_id"] not in {str(impostor), str(system), str(lint), str(lookalike)}
    assert fake_gitlab.notes[impostor].body == f"{MARKER}\nfake"
    assert fake_gitlab.notes[system].body == f"{MARKER}\nmentioned"
    assert len(fake_gitlab.mr_notes(GITLAB_PROJECT, GITLAB_MR)) == 5


async def test_a_note_written_as_another_identity_is_not_ours_to_edit(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    theirs = fake_gitlab.add_note(GITLAB_PROJECT, GITLAB_MR, "old-bot", f"{MARKER}\nold")
    previous = PublishResult(
        True, True, "comment", ids={"note_id": str(theirs), "author": "old-bot"}
    )
    result = await gitlab_provider().post_comment_to_pr(CTX, _report("new"), previous=previous)
    assert result.ids["note_id"] != str(theirs)
    assert fake_gitlab.notes[theirs].body == f"{MARKER}\nold"


async def test_an_unchanged_body_is_not_written_again(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    provider = gitlab_provider()
    await provider.post_comment_to_pr(CTX, _report("same"))
    await provider.post_comment_to_pr(CTX, _report("same"))
    assert [r.method for r in fake_gitlab.writes()] == ["POST"]


async def test_the_note_links_to_the_merge_request(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    result = await gitlab_provider().post_comment_to_pr(CTX, _report("x"))
    note_id = result.ids["note_id"]
    assert (
        result.url
        == f"{fake_gitlab.url}/{GITLAB_PROJECT}/-/merge_requests/{GITLAB_MR}#note_{note_id}"
    )


async def test_no_merge_request_means_nothing_attempted(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    ctx = CiContext(source="gitlab", repository=GITLAB_PROJECT, sha=SHA)
    result = await gitlab_provider().post_comment_to_pr(ctx, _report("x"))
    assert (result.attempted, result.succeeded, result.reason) == (False, False, "no merge request")
    assert fake_gitlab.requests == []


async def test_a_vanished_merge_request_is_not_found(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    ctx = CiContext(source="gitlab", repository=GITLAB_PROJECT, sha=SHA, pr=404)
    with pytest.raises(NotFound, match="organisation acme"):
        await gitlab_provider().post_comment_to_pr(ctx, _report("x"))


async def test_the_bot_login_is_asked_once_per_token(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    shared = GitlabShared()
    for run in range(3):
        provider = gitlab_provider(shared=shared)
        assert await provider.bot_login() == GITLAB_BOT
        await provider.post_comment_to_pr(CTX, _report(f"run {run}"))
    assert [r.path for r in fake_gitlab.requests].count("/user") == 1

    fake_gitlab.add_token("glpat-other-token-0000", "other-bot")
    other = gitlab_provider(shared=shared, token="glpat-other-token-0000")
    assert await other.bot_login() == "other-bot"
    assert GITLAB_TOKEN not in repr(shared.logins)


async def test_a_create_whose_answer_was_lost_is_not_repeated(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.inject(Fault("server_error", method="POST", path=r".*/notes", applied=True))
    result = await gitlab_provider().post_comment_to_pr(CTX, _report("once"))
    (note,) = fake_gitlab.mr_notes(GITLAB_PROJECT, GITLAB_MR)
    assert result.ids["note_id"] == str(note.id)
    assert [r.method for r in fake_gitlab.writes()] == ["POST"]


async def test_a_create_that_failed_is_retried(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.inject(Fault("server_error", method="POST", path=r".*/notes", times=2))
    result = await gitlab_provider().post_comment_to_pr(CTX, _report("third time"))
    (note,) = fake_gitlab.mr_notes(GITLAB_PROJECT, GITLAB_MR)
    assert result.ids["note_id"] == str(note.id)
    assert [(r.method, r.status) for r in fake_gitlab.writes()] == [
        ("POST", 502),
        ("POST", 502),
        ("POST", 201),
    ]


async def test_a_refused_command_gets_a_reply_that_is_no_command(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    provider = gitlab_provider()
    await provider.refuse_command(CTX, "guest-gil", "run")
    (reply,) = fake_gitlab.mr_notes(GITLAB_PROJECT, GITLAB_MR)
    assert reply.author == GITLAB_BOT
    assert reply.body.startswith("@guest-gil ")
    assert "Developer" in reply.body
    assert "may run `/aac run` on this merge request" in reply.body
    assert parse_command(reply.body) is None  # its Note Hook must not be read as a command
    assert MARKER not in reply.body  # never mistaken for the sticky report note
    # Without a merge request there is nowhere to reply.
    await provider.refuse_command(
        CiContext(source="gitlab", repository=GITLAB_PROJECT, sha=SHA), "x", "rerun"
    )
    assert len(fake_gitlab.mr_notes(GITLAB_PROJECT, GITLAB_MR)) == 1


async def test_an_answered_command_gets_a_note_addressed_to_its_author(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    provider = gitlab_provider()
    await provider.answer_command(CTX, "dev-dana", "no suite `nightlly`; try `nightly`.")
    (reply,) = fake_gitlab.mr_notes(GITLAB_PROJECT, GITLAB_MR)
    assert (reply.author, reply.body) == (
        GITLAB_BOT,
        "@dev-dana no suite `nightlly`; try `nightly`.",
    )
    assert parse_command(reply.body) is None
