from __future__ import annotations

import pytest

from config.repo_config import DEFAULT_CONFIG, RepoConfigError, parse_repo_config


def test_absent_or_empty_file_is_the_documented_default() -> None:
    for text in (None, "", "# nothing\n"):
        config = parse_repo_config(text)
        assert config == DEFAULT_CONFIG
    [suite] = DEFAULT_CONFIG.suites_for("pull_request")
    assert suite.name == "tests"
    assert DEFAULT_CONFIG.suites_for("pull_request", draft=True) == []
    assert suite.wants_artifact("junit-results")
    assert not suite.wants_artifact("coverage-html")
    assert suite.wants_file("out/TEST-com.acme.FooTest.xml")
    assert not suite.wants_file("a.json")


def test_suites_triggers_and_drafts() -> None:
    config = parse_repo_config(
        """
version: 1
suites:
  - name: unit
    triggers: [pull_request]
    drafts: true
  - name: e2e
    triggers: [workflow_run]
    workflows: [E2E]
    artifacts: ["playwright-*"]
"""
    )
    assert [s.name for s in config.suites_for("pull_request", draft=True)] == ["unit"]
    [e2e] = config.suites_for("workflow_run")
    assert e2e.accepts_workflow("E2E")
    assert not e2e.accepts_workflow("CI")
    assert e2e.wants_artifact("playwright-report")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("suites: [unclosed", "not valid YAML at line 1"),
        ("- a list", "must be a mapping"),
        ("suites:\n  - name: unit\n    triggers: [push_to_prod]\n", "suites.0.triggers.0"),
        ("suites: []\n", "suites"),
        ("surprise: 1\n", "surprise"),
        ("suites:\n  - name: 'bad name!'\n", "suites.0.name"),
    ],
)
def test_invalid_files_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(text)
    assert needle in str(info.value)
