"""Repository names, SCMs and PR numbers from URLs."""

from __future__ import annotations

import pytest

from bot.reporter.repo_names import pr_number_from_url, repository_from_url, scm_from_url


@pytest.mark.parametrize(
    ("url", "repository", "scm"),
    [
        ("git@github.com:acme/api.git", "acme/api", "github"),
        ("https://github.com/acme/api.git", "acme/api", "github"),
        ("https://github.com/acme/api", "acme/api", "github"),
        ("git://github.com/acme/api.git", "acme/api", "github"),
        ("https://bot:tok@github.example.com/acme/api.git", "acme/api", "github"),
        ("ssh://git@gitlab.com:2222/grp/sub/proj.git", "grp/sub/proj", "gitlab"),
        ("https://gitlab.example.com/grp/sub/proj.git", "grp/sub/proj", "gitlab"),
        ("https://org@dev.azure.com/org/Proj/_git/repo", "Proj/repo", "azure"),
        ("https://org.visualstudio.com/Proj/_git/repo", "Proj/repo", "azure"),
        ("git@ssh.dev.azure.com:v3/org/Proj/repo", "Proj/repo", "azure"),
        ("https://bitbucket.example.com/scm/proj/repo.git", "proj/repo", None),
        ("git@bitbucket.org:team/repo.git", "team/repo", None),
    ],
)
def test_repository_and_scm(url: str, repository: str, scm: str | None) -> None:
    assert repository_from_url(url) == repository
    assert scm_from_url(url) == scm


@pytest.mark.parametrize("url", [None, "", "not a url", "https://github.com/only-owner"])
def test_unusable_urls(url: str | None) -> None:
    assert repository_from_url(url) is None


@pytest.mark.parametrize(
    ("url", "number"),
    [
        ("https://github.com/o/r/pull/12", 12),
        ("https://gitlab.com/g/p/-/merge_requests/7", 7),
        ("https://bitbucket.org/t/r/pull-requests/3/", 3),
        ("https://github.com/o/r", None),
        (None, None),
    ],
)
def test_pr_number(url: str | None, number: int | None) -> None:
    assert pr_number_from_url(url) == number
