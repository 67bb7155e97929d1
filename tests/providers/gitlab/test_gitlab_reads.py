"""What the core asks of GitLab beyond publishing: ``.aac.yml`` and who may run commands."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from providers.base import ChecksCommandPermission, KnowsBotIdentity, NotFound, ReadsRepositoryFiles
from providers.gitlab.provider import GitlabProvider
from tests.fakes.gitlab import DEVELOPER, GUEST, MAINTAINER, OWNER, REPORTER, FakeGitlab
from tests.providers.conftest import GITLAB_PROJECT


def test_the_provider_offers_the_optional_capabilities(
    gitlab_provider: Callable[..., GitlabProvider],
) -> None:
    provider = gitlab_provider()
    assert isinstance(provider, ReadsRepositoryFiles)
    assert isinstance(provider, ChecksCommandPermission)
    assert isinstance(provider, KnowsBotIdentity)


async def test_get_file_decodes_the_base64_content(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    data = "suites:\n  tests:\n    command: pytest  # é\n".encode()
    fake_gitlab.add_file(GITLAB_PROJECT, ".gitlab/aac.yml", data, ref="abc123")
    provider = gitlab_provider()
    assert await provider.get_file(GITLAB_PROJECT, ".gitlab/aac.yml", "abc123") == data
    assert await provider.get_file(GITLAB_PROJECT, ".gitlab/aac.yml", "other") is None
    assert await provider.get_file(GITLAB_PROJECT, ".aac.yml", "abc123") is None
    (first, *_) = fake_gitlab.requests
    assert first.path == f"/projects/{GITLAB_PROJECT}/repository/files/.gitlab/aac.yml"


async def test_get_file_of_a_vanished_project_is_not_found(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    with pytest.raises(NotFound):
        await gitlab_provider().get_file("acme/gone", ".aac.yml", "main")


def test_file_url_is_the_blob_page(gitlab_provider: Callable[..., GitlabProvider]) -> None:
    provider = gitlab_provider(base_url="https://gitlab.example.com/api/v4/")
    assert (
        provider.file_url("acme/platform/widgets", "conf/a b.yml", "feature/x")
        == "https://gitlab.example.com/acme/platform/widgets/-/blob/feature/x/conf/a%20b.yml"
    )


@pytest.mark.parametrize(
    ("namespace", "level", "allowed"),
    [
        (GITLAB_PROJECT, DEVELOPER, True),
        (GITLAB_PROJECT, MAINTAINER, True),
        (GITLAB_PROJECT, OWNER, True),
        (GITLAB_PROJECT, REPORTER, False),
        (GITLAB_PROJECT, GUEST, False),
        ("acme", DEVELOPER, True),  # inherited from the top-level group
        ("acme/platform", MAINTAINER, True),  # inherited from a subgroup
        ("acme/platform", GUEST, False),
    ],
)
async def test_developer_access_or_more_may_run_commands(
    gitlab_provider: Callable[..., GitlabProvider],
    fake_gitlab: FakeGitlab,
    namespace: str,
    level: int,
    allowed: bool,
) -> None:
    fake_gitlab.add_member(namespace, "dana", level)
    assert await gitlab_provider().may_run_commands(GITLAB_PROJECT, "dana") is allowed
    member_reads = [r.path for r in fake_gitlab.requests if "/members/" in r.path]
    assert member_reads == [
        f"/projects/{GITLAB_PROJECT}/members/all/{fake_gitlab.users['dana'].id}"
    ]


async def test_strangers_and_unknown_users_may_not(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.add_user("stranger")
    provider = gitlab_provider()
    assert await provider.may_run_commands(GITLAB_PROJECT, "stranger") is False
    assert await provider.may_run_commands(GITLAB_PROJECT, "nobody-by-that-name") is False


async def test_a_blocked_developer_may_not(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.add_member(GITLAB_PROJECT, "eve", DEVELOPER)
    fake_gitlab.users["eve"].state = "blocked"
    assert await gitlab_provider().may_run_commands(GITLAB_PROJECT, "eve") is False


async def test_permission_on_a_vanished_project_is_not_found(
    gitlab_provider: Callable[..., GitlabProvider], fake_gitlab: FakeGitlab
) -> None:
    fake_gitlab.add_user("dana")
    with pytest.raises(NotFound):
        await gitlab_provider().may_run_commands("acme/gone", "dana")
