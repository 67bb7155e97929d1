"""One PR thread per (PR, suite): created once, edited in place, recreated after deletion,
found by its property among the bot's own threads, never another user's."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from providers.azure_devops.provider import THREAD_PROPERTY, AzureDevOpsProvider
from providers.base import CommentBody, TooLarge, comment_marker
from providers.context import CiContext
from tests.fakes.azure_devops import FakeAzureDevOps
from tests.providers.azure_devops.conftest import BOT, PR, REPOSITORY, SHA, SOMEONE

CTX = CiContext(source="azure", repository=REPOSITORY, sha=SHA, pr=PR, suite="tests")


def _report(text: str, suite: str = "tests") -> CommentBody:
    return CommentBody(suite=suite, body=f"{comment_marker(suite)}\n## aac report\n{text}")


async def test_create_then_edit_then_recreate_after_deletion(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    first = await provider.post_comment_to_pr(CTX, _report("run 1"))
    (thread,) = fake_azure.pr_threads(REPOSITORY, PR)
    assert first.ids == {
        "thread_id": str(thread.id),
        "comment_id": str(thread.comments[0].id),
        "author": BOT.id,
    }
    assert thread.status == "closed"  # never blocks an "all comments resolved" policy
    assert thread.properties[THREAD_PROPERTY]["$value"] == "tests"
    assert thread.comments[0].author.id == BOT.id
    assert first.url is not None
    assert first.url.endswith(f"?discussionId={thread.id}")

    second = await provider.post_comment_to_pr(CTX, _report("run 2"), previous=first)
    (edited,) = fake_azure.pr_threads(REPOSITORY, PR)
    assert second.ids == first.ids
    assert edited.comments[0].content.endswith("run 2")
    assert edited.comments[0].edits == 1

    fake_azure.delete_first_comment(REPOSITORY, PR, thread.id)  # someone deleted the report
    third = await provider.post_comment_to_pr(CTX, _report("run 3"), previous=second)
    live = [t for t in fake_azure.pr_threads(REPOSITORY, PR) if not t.comments[0].is_deleted]
    (recreated,) = live
    assert third.ids["thread_id"] == str(recreated.id) != second.ids["thread_id"]
    assert recreated.comments[0].content.endswith("run 3")


async def test_found_by_property_among_the_bots_threads_when_nothing_was_stored(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    fake_azure.add_thread(REPOSITORY, PR, SOMEONE, "LGTM")
    ours = fake_azure.add_thread(REPOSITORY, PR, BOT, "old report", **{THREAD_PROPERTY: "tests"})
    fake_azure.add_thread(REPOSITORY, PR, BOT, "other suite", **{THREAD_PROPERTY: "e2e"})

    result = await azure_provider().post_comment_to_pr(CTX, _report("new"), previous=None)

    assert result.ids["thread_id"] == str(ours)
    assert len(fake_azure.pr_threads(REPOSITORY, PR)) == 3
    assert not [r for r in fake_azure.writes() if r.operation == "CreateThread"]


async def test_the_same_property_on_another_users_thread_is_never_edited(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    theirs = fake_azure.add_thread(
        REPOSITORY, PR, SOMEONE, f"{comment_marker('tests')} copied", **{THREAD_PROPERTY: "tests"}
    )

    result = await azure_provider().post_comment_to_pr(CTX, _report("ours"))

    assert result.ids["thread_id"] != str(theirs)
    threads = {t.id: t for t in fake_azure.pr_threads(REPOSITORY, PR)}
    assert threads[theirs].comments[0].content.endswith("copied")
    assert len(threads) == 2


async def test_an_identical_body_is_not_written_again(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    await provider.post_comment_to_pr(CTX, _report("same"))
    before = len(fake_azure.writes())
    await provider.post_comment_to_pr(CTX, _report("same"), previous=None)
    assert len(fake_azure.writes()) == before


async def test_threads_can_be_left_active(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    await azure_provider(close_threads=False).post_comment_to_pr(CTX, _report("x"))
    (thread,) = fake_azure.pr_threads(REPOSITORY, PR)
    assert thread.status == "active"


async def test_the_marker_is_added_when_the_body_lacks_it(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    await azure_provider().post_comment_to_pr(CTX, CommentBody("tests", "plain"))
    (thread,) = fake_azure.pr_threads(REPOSITORY, PR)
    assert thread.comments[0].content == f"{comment_marker('tests')}\nplain"


async def test_bodies_within_the_limit_pass_and_beyond_it_nothing_is_sent(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    marker = comment_marker("tests") + "\n"
    fits = CommentBody("tests", marker + "x" * (provider.limits.comment_chars - len(marker)))
    await provider.post_comment_to_pr(CTX, fits)
    (thread,) = fake_azure.pr_threads(REPOSITORY, PR)
    assert len(thread.comments[0].content) == 150_000

    fake_azure.reset()
    with pytest.raises(TooLarge):
        await provider.post_comment_to_pr(CTX, CommentBody("tests", fits.body + "x"))
    assert fake_azure.requests == []


async def test_no_pull_request_means_no_thread(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    ctx = CiContext(source="azure", repository=REPOSITORY, sha=SHA, pr=None)
    result = await azure_provider().post_comment_to_pr(ctx, _report("x"))
    assert (result.attempted, result.succeeded, result.reason) == (False, False, "no pull request")
    assert fake_azure.requests == []


async def test_bot_login_is_the_pats_account(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    provider = azure_provider()
    assert await provider.bot_login() == BOT.login
    assert await provider.bot_login() == BOT.login
    assert len([r for r in fake_azure.requests if r.operation == "ConnectionData"]) == 1
