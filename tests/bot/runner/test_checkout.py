"""The node's checkout: the exact commit, and the credential only in git's environment."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.runner.checkout import CheckoutError, GitAuth, checkout, git_environment
from tests.bot.runner.conftest import GitRepo

AUTH = GitAuth("x-access-token", "ghs_" + "t" * 36)


def test_the_credential_travels_as_a_header_in_the_environment_for_https_only(
    tmp_path: Path,
) -> None:
    env = git_environment({"PATH": "/bin", "AAC_RUNNER_TOKEN": "x"}, tmp_path, AUTH, "https://h/r")
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    header = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: Basic ")
    assert base64.b64decode(header).decode() == f"x-access-token:{AUTH.password}"
    assert "AAC_RUNNER_TOKEN" not in env  # the node's own environment stays with the node
    assert (env["GIT_TERMINAL_PROMPT"], env["HOME"]) == ("0", str(tmp_path))
    assert "GIT_CONFIG_COUNT" not in git_environment({}, tmp_path, AUTH, "http://h/r")
    assert AUTH.password not in repr(AUTH)


async def test_checks_out_the_commit_asked_for_not_the_tip(repo: GitRepo, tmp_path: Path) -> None:
    first = repo.commit({"a.txt": "one"})
    repo.commit({"a.txt": "two"})
    target = tmp_path / "job" / "repo"
    target.parent.mkdir()
    await checkout(f"file://{repo.path}", first, target, auth=None, base_env={}, home=tmp_path)
    assert (target / "a.txt").read_text() == "one"
    assert not list(target.parent.glob("**/credentials"))


async def test_an_unknown_commit_fails_clearly(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit({"a.txt": "one"})
    target = tmp_path / "job" / "repo"
    target.parent.mkdir()
    with pytest.raises(CheckoutError, match="git checkout failed"):
        await checkout(
            f"file://{repo.path}", "f" * 40, target, auth=None, base_env={}, home=tmp_path
        )
