"""The ``.aac.yml`` error as GitHub receives it: a check run (App) or a commit status (token)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.report.config_error import render_config_error
from config.repo_config import CONFIG_PATH, RepoConfigError, parse_repo_config
from providers.context import CiContext
from providers.github.provider import GithubProvider, web_url
from tests.fakes.github import FakeGithub
from tests.providers.conftest import REPOSITORY, SHA

CTX = CiContext(source="github", repository=REPOSITORY, sha=SHA)


def _error() -> RepoConfigError:
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config("version: 1\nsuites:\n  - name: unit\n    drafts: sometimes\n")
    return info.value


async def test_with_a_token_it_is_a_failed_commit_status(
    token_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = token_provider()
    file_url = provider.file_url(REPOSITORY, CONFIG_PATH, SHA)
    status = render_config_error(_error(), sha=SHA, file_url=file_url, limits=provider.limits)
    result = await provider.update_commit_status(CTX, status)

    assert result.kind == "commit_status"
    [posted] = fake_github.statuses
    assert posted["context"] == "aac-bot: configuration"
    assert posted["state"] == "failure"
    assert posted["description"] == (
        "Invalid .aac.yml (fix it and push): line 4, suites[0].drafts: Input should be a valid "
        "boolean, unable to interpret input"
    )
    assert posted["target_url"] == f"{fake_github.url}/{REPOSITORY}/blob/{SHA}/.aac.yml#L4"
    assert not fake_github.check_runs


async def test_as_an_app_it_is_one_check_run_per_commit(
    app_provider: Callable[..., GithubProvider], fake_github: FakeGithub
) -> None:
    provider = app_provider()
    status = render_config_error(_error(), sha=SHA, limits=provider.limits)
    first = await provider.update_commit_status(CTX, status)
    again = await provider.update_commit_status(CTX, status)  # another event, same commit

    assert first.kind == "check_run"
    assert again.ids == first.ids
    [run] = fake_github.check_runs.values()
    assert (run.name, run.status, run.conclusion) == (
        "aac-bot: configuration",
        "completed",
        "failure",
    )
    assert run.output["title"] == "Invalid .aac.yml"
    assert not fake_github.statuses


@pytest.mark.parametrize(
    ("api_url", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://api.acme.ghe.com", "https://acme.ghe.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com"),
    ],
)
def test_web_url_of_an_api_url(api_url: str, web: str) -> None:
    assert web_url(api_url) == web
