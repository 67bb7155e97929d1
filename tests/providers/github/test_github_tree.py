"""The repository's file list at a commit, for annotation paths: one recursive tree read."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from providers.base import ListsRepositoryFiles, RateLimited
from providers.github.provider import GitHubClient, GithubProvider, TreeCache
from tests.fakes.github import FakeGithub, Fault
from tests.providers.conftest import PAT, REPOSITORY, SHA

TREES = r"/repos/octo-org/widgets/git/trees/.*"
FILES = (
    "README.md",
    "src/widgets/api.py",
    "src/widgets/models.py",
    "src-gen/x.py",
    "tests/test_api.py",
)


def _tree_reads(fake: FakeGithub) -> list[str]:
    return [r.path for r in fake.requests if r.method == "GET" and "/git/trees/" in r.path]


async def test_fake_serves_githubs_tree_shape(
    http_client: httpx.AsyncClient, fake_github: FakeGithub
) -> None:
    fake_github.add_tree(REPOSITORY, SHA, FILES)
    gh = GitHubClient(http_client, requester="aac-test", base_url=fake_github.url)
    url = f"/repos/{REPOSITORY}/git/trees/{SHA}"
    tree = await gh.getitem(url + "?recursive=1", oauth_token=PAT)
    assert set(tree) == {"sha", "url", "tree", "truncated"}
    assert tree["truncated"] is False
    # git's order, depth first: "src-gen" sorts before "src/" because "-" < "/".
    assert [(e["path"], e["type"]) for e in tree["tree"]] == [
        ("README.md", "blob"),
        ("src-gen", "tree"),
        ("src-gen/x.py", "blob"),
        ("src", "tree"),
        ("src/widgets", "tree"),
        ("src/widgets/api.py", "blob"),
        ("src/widgets/models.py", "blob"),
        ("tests", "tree"),
        ("tests/test_api.py", "blob"),
    ]
    blob = tree["tree"][0]
    assert set(blob) == {"path", "mode", "type", "sha", "size", "url"}
    assert blob["mode"] == "100644"
    assert len(blob["sha"]) == 40
    top = await gh.getitem(url, oauth_token=PAT)
    assert [e["path"] for e in top["tree"]] == ["README.md", "src-gen", "src", "tests"]
    fake_github.tree_max_entries = 4
    cut = await gh.getitem(url + "?recursive=true", oauth_token=PAT)
    assert cut["truncated"] is True
    assert len(cut["tree"]) == 4


async def test_file_list_is_read_once_per_commit(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    fake_github.add_tree(REPOSITORY, SHA, FILES)
    fake_github.add_tree(REPOSITORY, "f" * 40, FILES[:1])
    provider = app_provider()
    assert isinstance(provider, ListsRepositoryFiles)
    files = await provider.repository_files(REPOSITORY, SHA)
    assert files is not None
    assert sorted(files) == sorted(FILES)  # blobs only, no directories
    # Another job of the same installation (a new provider, the same shared state).
    assert await app_provider().repository_files(REPOSITORY, SHA) == files
    assert await provider.repository_files(REPOSITORY, "f" * 40) == ("README.md",)
    assert _tree_reads(fake_github) == [
        f"/repos/{REPOSITORY}/git/trees/{SHA}",
        f"/repos/{REPOSITORY}/git/trees/{'f' * 40}",
    ]
    assert all(r.query == {"recursive": "1"} for r in fake_github.requests if "/git/" in r.path)


async def test_truncated_tree_means_heuristics_logged_once(
    app_provider: Callable[..., GithubProvider],
    fake_github: FakeGithub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_github.add_tree(REPOSITORY, SHA, FILES)
    fake_github.add_tree(REPOSITORY, "f" * 40, FILES)
    fake_github.tree_max_entries = 3
    provider = app_provider()
    with caplog.at_level(logging.WARNING, logger="aac.github"):
        assert await provider.repository_files(REPOSITORY, SHA) is None
        assert await provider.repository_files(REPOSITORY, SHA) is None
        assert await provider.repository_files(REPOSITORY, "f" * 40) is None
    assert len(_tree_reads(fake_github)) == 1  # a huge repository is not listed again
    [record] = [r for r in caplog.records if r.name == "aac.github"]
    assert "too large" in record.getMessage()
    assert record.repository == REPOSITORY  # type: ignore[attr-defined]


async def test_unknown_commit_has_no_file_list(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    assert await app_provider().repository_files(REPOSITORY, SHA) is None


async def test_tree_read_errors_are_typed_and_retried(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    fake_github.add_tree(REPOSITORY, SHA, FILES)
    fake_github.inject(Fault("server_error", method="GET", path=TREES))
    assert await app_provider().repository_files(REPOSITORY, SHA) is not None
    assert [r.status for r in fake_github.requests if "/git/trees/" in r.path] == [502, 200]
    fake_github.add_tree(REPOSITORY, "f" * 40, FILES)
    fake_github.inject(Fault("secondary_rate_limit", method="GET", path=TREES, retry_after=30))
    with pytest.raises(RateLimited):
        await app_provider().repository_files(REPOSITORY, "f" * 40)


def test_tree_cache_is_bounded_by_paths() -> None:
    cache = TreeCache(max_paths=5)
    cache.put("a", ("1", "2", "3"))
    cache.put("b", ("1", "2"))
    assert cache.get("a") is not None  # now the most recently used
    cache.put("c", ("1",))
    assert cache.get("b") is None
    assert cache.get("a") == ("1", "2", "3")
    cache.put("huge", tuple(str(i) for i in range(10)))  # kept alone rather than not at all
    assert cache.get("huge") is not None
    assert cache.get("a") is None
