"""The sticky PR comment: one per (PR, suite), edited in place, found only by our own marker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from providers.base import CommentBody, RateLimited, TooLarge, comment_marker
from providers.context import CiContext
from providers.github.provider import GithubProvider, GithubShared
from tests.fakes.github import FakeGithub, Fault
from tests.providers.conftest import BOT_LOGIN, PAT_LOGIN, REPOSITORY, SHA

PR = 12
CTX = CiContext(source="github", repository=REPOSITORY, sha=SHA, pr=PR)
MARKER = comment_marker("tests")
COMMENTS = rf"/repos/octo-org/widgets/issues/({PR}/comments|comments/\d+)"


def _report(text: str, suite: str = "tests") -> CommentBody:
    return CommentBody(suite=suite, body=f"{comment_marker(suite)}\n## aac report\n{text}")


def _fill(fake: FakeGithub, count: int, user: str = "someone") -> None:
    for i in range(count):
        fake.add_comment(REPOSITORY, PR, user, f"comment {i}")


async def test_create_then_edit_then_recreate_after_deletion(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider()
    first = await provider.post_comment_to_pr(CTX, _report("run 1"))
    (comment,) = fake_github.issue_comments(REPOSITORY, PR)
    assert first.kind == "comment"
    assert first.ids == {"comment_id": str(comment.id), "author": BOT_LOGIN}
    assert comment.user == BOT_LOGIN
    assert first.url is not None
    assert first.url.endswith(f"#issuecomment-{comment.id}")

    second = await provider.post_comment_to_pr(CTX, _report("run 2"), previous=first)
    (edited,) = fake_github.issue_comments(REPOSITORY, PR)
    assert second.ids == first.ids
    assert edited.body.endswith("run 2")
    assert "updated" not in edited.body.lower()  # no "comment updated" notice

    del fake_github.comments[edited.id]  # someone deleted it
    third = await provider.post_comment_to_pr(CTX, _report("run 3"), previous=second)
    (recreated,) = fake_github.issue_comments(REPOSITORY, PR)
    assert third.ids == {"comment_id": str(recreated.id), "author": BOT_LOGIN} != second.ids
    assert recreated.body.endswith("run 3")


async def test_marker_found_on_page_three(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    _fill(fake_github, 230)
    ours = fake_github.add_comment(REPOSITORY, PR, BOT_LOGIN, f"{MARKER}\nold report")
    _fill(fake_github, 10)

    result = await app_provider().post_comment_to_pr(CTX, _report("new"), previous=None)

    assert result.ids == {"comment_id": str(ours), "author": BOT_LOGIN}
    assert len(fake_github.issue_comments(REPOSITORY, PR)) == 241
    assert fake_github.comments[ours].body.endswith("new")
    pages = [
        r.query.get("page", "1")
        for r in fake_github.requests
        if r.method == "GET" and r.path.endswith(f"/issues/{PR}/comments")
    ]
    assert pages == ["1", "2", "3"]
    listed = [r for r in fake_github.requests if r.path.endswith(f"/issues/{PR}/comments")]
    assert all(r.query.get("per_page") == "100" for r in listed)


async def test_same_marker_by_another_user_is_never_edited(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    impostor = fake_github.add_comment(REPOSITORY, PR, "mallory", f"{MARKER}\nfake report")
    other_bot = fake_github.add_comment(REPOSITORY, PR, "other-app[bot]", f"{MARKER}\nx")
    result = await app_provider().post_comment_to_pr(CTX, _report("real"))
    assert result.ids["comment_id"] not in (str(impostor), str(other_bot))
    assert fake_github.comments[impostor].body == f"{MARKER}\nfake report"
    assert fake_github.comments[other_bot].body == f"{MARKER}\nx"
    assert len(fake_github.issue_comments(REPOSITORY, PR)) == 3


async def test_never_matched_by_visible_text_or_another_suite(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    lookalike = fake_github.add_comment(REPOSITORY, PR, BOT_LOGIN, "## aac report\nrun 0")
    lint = fake_github.add_comment(REPOSITORY, PR, BOT_LOGIN, f"{comment_marker('lint')}\nl")
    await app_provider().post_comment_to_pr(CTX, _report("run 1"))
    assert fake_github.comments[lookalike].body == "## aac report\nrun 0"
    assert fake_github.comments[lint].body == f"{comment_marker('lint')}\nl"
    assert len(fake_github.issue_comments(REPOSITORY, PR)) == 3


async def test_marker_is_added_when_the_body_lacks_it(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider()
    await provider.post_comment_to_pr(CTX, CommentBody(suite="tests", body="plain"))
    await provider.post_comment_to_pr(CTX, CommentBody(suite="tests", body="plain 2"))
    (comment,) = fake_github.issue_comments(REPOSITORY, PR)
    assert comment.body == f"{MARKER}\nplain 2"


async def test_unchanged_pages_revalidate_with_etags(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    _fill(fake_github, 220)
    provider = app_provider()
    await provider.post_comment_to_pr(CTX, _report("run 1"))  # created on page 3
    fake_github.requests.clear()
    await provider.post_comment_to_pr(CTX, _report("run 2"))  # searched again
    listed = [
        (r.query.get("page", "1"), r.status)
        for r in fake_github.requests
        if r.method == "GET" and r.path.endswith(f"/issues/{PR}/comments")
    ]
    # Pages 1-2 are unchanged: 304 Not Modified, served from gidgethub's cache.
    assert listed == [("1", 304), ("2", 304), ("3", 200)]
    assert len(fake_github.issue_comments(REPOSITORY, PR)) == 221


async def test_token_mode_comments_as_the_token_user(
    token_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = token_provider()
    assert await provider.bot_login() == PAT_LOGIN
    fake_github.add_comment(REPOSITORY, PR, BOT_LOGIN, f"{MARKER}\nthe App's, not ours")
    first = await provider.post_comment_to_pr(CTX, _report("one"))
    second = await provider.post_comment_to_pr(CTX, _report("two"))
    assert first.ids == second.ids
    users = sorted(c.user for c in fake_github.issue_comments(REPOSITORY, PR))
    assert users == sorted([BOT_LOGIN, PAT_LOGIN])


async def test_a_known_comment_by_another_identity_is_not_edited(
    app_provider: Callable[..., GithubProvider],
    token_provider: Callable[..., GithubProvider],
    fake_github: FakeGithub,
) -> None:
    # The organisation published with a token, then installed the App: the id stored by the
    # token's cycles names the token user's comment, which the App must leave alone.
    by_token = await token_provider().post_comment_to_pr(CTX, _report("token"))
    assert by_token.ids["author"] == PAT_LOGIN
    by_app = await app_provider().post_comment_to_pr(CTX, _report("app"), previous=by_token)
    assert by_app.ids["comment_id"] != by_token.ids["comment_id"]
    assert fake_github.comments[int(by_token.ids["comment_id"])].body.endswith("token")
    assert fake_github.comments[int(by_app.ids["comment_id"])].user == BOT_LOGIN


async def test_app_login_comes_from_the_app_slug(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    assert await app_provider().bot_login() == BOT_LOGIN
    assert await app_provider(login="custom[bot]").bot_login() == "custom[bot]"


async def test_no_pull_request_means_nothing_attempted(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    ctx = CiContext(source="github", repository=REPOSITORY, sha=SHA, pr=None)
    result = await app_provider().post_comment_to_pr(ctx, _report("x"))
    assert (result.attempted, result.succeeded) == (False, False)
    assert fake_github.requests == []


async def test_oversized_body_is_refused_before_sending(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    with pytest.raises(TooLarge):
        await app_provider().post_comment_to_pr(CTX, _report("x" * 70_000))
    assert fake_github.writes() == []


async def test_secondary_limit_writes_nothing_then_the_retry_creates_once(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    provider = app_provider(shared=GithubShared(pacing_seconds=0.01, now=lambda: now))
    fake_github.inject(Fault("secondary_rate_limit", method="POST", path=COMMENTS))
    with pytest.raises(RateLimited) as raised:
        await provider.post_comment_to_pr(CTX, _report("x"))
    assert raised.value.retry_at == now + timedelta(seconds=60)
    assert fake_github.issue_comments(REPOSITORY, PR) == []

    await provider.post_comment_to_pr(CTX, _report("x"))
    assert len(fake_github.issue_comments(REPOSITORY, PR)) == 1


async def test_lost_create_response_does_not_duplicate(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    fake_github.inject(Fault("server_error", method="POST", path=COMMENTS, applied=True))
    result = await app_provider().post_comment_to_pr(CTX, _report("x"))
    (comment,) = fake_github.issue_comments(REPOSITORY, PR)
    assert result.ids == {"comment_id": str(comment.id), "author": BOT_LOGIN}


async def test_429_on_edit_is_rate_limited(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider()
    first = await provider.post_comment_to_pr(CTX, _report("one"))
    fake_github.inject(Fault("secondary_rate_limit", method="PATCH", path=COMMENTS, status=429))
    with pytest.raises(RateLimited):
        await provider.post_comment_to_pr(CTX, _report("two"), previous=first)
    (comment,) = fake_github.issue_comments(REPOSITORY, PR)
    assert comment.body.endswith("one")


@pytest.mark.parametrize(
    ("role", "base", "expected"),
    [
        ("admin", None, "admin"),
        ("maintain", None, "write"),
        ("write", None, "write"),
        ("release-manager", "write", "write"),  # an organisation's custom role built on write
        ("triage", None, "read"),
        ("read", None, "read"),
    ],
)
async def test_collaborator_permission_reads_write_access_through_any_role(
    app_provider: Callable[..., GithubProvider],
    fake_github: FakeGithub,
    role: str,
    base: str | None,
    expected: str,
) -> None:
    fake_github.set_permission(REPOSITORY, "alice", role, base)
    provider = app_provider()
    assert await provider.collaborator_permission(REPOSITORY, "alice") == expected
    assert await provider.collaborator_permission(REPOSITORY, "nobody") == "none"
