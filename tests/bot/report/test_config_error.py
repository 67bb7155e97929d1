"""The check run that explains a rejected ``.aac.yml``: rendered without any network."""

from __future__ import annotations

import pytest

from bot.analysis.redact import Redactor
from bot.report.config_error import (
    CONFIG_CHECK_NAME,
    EXAMPLE,
    MAX_LISTED,
    render_config_error,
)
from config.repo_config import ConfigProblem, RepoConfigError, parse_repo_config
from providers.base import Conclusion, StatusState
from providers.github.provider import commit_status_json

SHA = "0123456789abcdef0123456789abcdef01234567"
FILE_URL = f"https://github.com/octo-org/widgets/blob/{SHA}/.aac.yml"
INVALID = """\
suites:
  - name: unit
    triggers: [push_to_prod]
"""


def _error(text: str) -> RepoConfigError:
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(text)
    return info.value


def test_a_failed_check_naming_the_file_problem_line_and_fix() -> None:
    status = render_config_error(_error(INVALID), sha=SHA, file_url=FILE_URL)
    assert status.name == CONFIG_CHECK_NAME == "aac-bot: configuration"
    assert (status.state, status.conclusion) == (StatusState.COMPLETED, Conclusion.FAILURE)
    assert status.title == "Invalid .aac.yml"
    summary = status.summary or ""
    assert "`.aac.yml` at 0123456 is invalid, so no test suites were started" in summary
    assert "**line 3, suites\\[0\\].triggers\\[0\\]**: unknown trigger; use pull" in summary
    assert "push a new commit" in summary
    assert f"[.aac.yml]({FILE_URL}#L3)" in summary  # the fix link opens the offending line
    assert "```yaml\nversion: 1\n" in summary  # a valid example, collapsed
    assert status.details_url == f"{FILE_URL}#L3"
    assert status.annotations == ()


def test_description_says_what_to_do_within_a_status_description() -> None:
    status = render_config_error(_error(INVALID), sha=SHA)
    assert status.description.startswith(
        "Invalid .aac.yml (fix it and push): line 3, suites[0].triggers[0]: unknown trigger; use"
    )
    assert len(status.description) <= 140
    # Token mode: a failed commit status with the same context and the description intact.
    data = commit_status_json(status, max_description=140)
    assert data == {
        "state": "failure",
        "context": "aac-bot: configuration",
        "description": status.description,
    }
    long = RepoConfigError([ConfigProblem("x" * 500, key="suites", line=2)])
    assert len(render_config_error(long, sha=SHA).description.encode()) <= 140


def test_a_yaml_error_without_a_key_and_no_file_link() -> None:
    status = render_config_error(_error("suites: [unclosed"), sha=SHA)
    assert "- **line 1**: not valid YAML: expected ',' or '\\]'" in (status.summary or "")
    assert status.details_url is None
    assert "[.aac.yml](" not in (status.summary or "")


def test_a_problem_without_a_line_links_the_file() -> None:
    error = RepoConfigError([ConfigProblem("the file is larger than 64 KiB")])
    status = render_config_error(error, sha=SHA, file_url=FILE_URL)
    assert status.details_url == FILE_URL
    assert "- the file is larger than 64 KiB" in (status.summary or "")


def test_only_the_first_problems_are_listed() -> None:
    problems = [ConfigProblem(f"problem {i}", key=f"k{i}", line=i + 1) for i in range(8)]
    summary = render_config_error(RepoConfigError(problems), sha=SHA).summary or ""
    assert "problem 4" in summary
    assert "problem 5" not in summary
    assert f"- … and {8 - MAX_LISTED} more" in summary


def test_hostile_keys_are_inert_and_secrets_redacted() -> None:
    token = "ghp_" + "a1B2" * 9
    stored = "org-webhook-secret-value"
    error = _error(f'"@everyone <img src=x>": 1\n"{token}": 2\n"{stored}": 3\n')
    status = render_config_error(error, sha=SHA, redact=Redactor([stored]).redact)
    summary = status.summary or ""
    assert "@everyone" not in summary  # the mention is broken with a word joiner
    assert "<img" not in summary
    published = f"{summary}\n{status.description}"  # the description is plain text
    assert token not in published
    assert stored not in published
    assert "[REDACTED" in published


def test_redacts_credential_shapes_by_default() -> None:
    token = "ghp_" + "Z9y8" * 9
    status = render_config_error(_error(f"{token}: 1\n"), sha=SHA)
    assert token not in f"{status.summary}\n{status.description}"


def test_the_example_is_valid_and_shows_every_trigger_and_a_run_suite() -> None:
    config = parse_repo_config(EXAMPLE)
    triggers = {t for suite in config.suites for t in suite.triggers}
    assert {"pull_request", "pipeline_finished", "manual"} <= triggers
    [run] = [suite.run for suite in config.suites if suite.run is not None]
    assert run.command.startswith("pytest")
    assert "secret" in EXAMPLE  # secrets by reference, never inline
