from __future__ import annotations

import pytest

from config.repo_config import (
    DEFAULT_CONFIG,
    MAX_CONFIG_BYTES,
    ConfigProblem,
    RepoConfigError,
    parse_repo_config,
)


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
        ("suites: [unclosed", "line 1: not valid YAML"),
        ("- a list", "must be a mapping"),
        ("suites:\n  - name: unit\n    triggers: [push_to_prod]\n", "suites[0].triggers[0]"),
        ("suites: []\n", "suites"),
        ("surprise: 1\n", "surprise"),
        ("suites:\n  - name: 'bad name!'\n", "suites[0].name"),
    ],
)
def test_invalid_files_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(text)
    assert needle in str(info.value)


def _problems(text: str | bytes) -> tuple[ConfigProblem, ...]:
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(text)
    return info.value.problems


def test_schema_problems_carry_the_key_and_its_line() -> None:
    text = """\
version: 1
suites:
  - name: unit
    triggers: [pull_request,
               push_to_prod]
    timeout: 30
"""
    triggers, unknown = _problems(text)
    assert (triggers.key, triggers.line, triggers.column) == ("suites[0].triggers[1]", 5, 16)
    assert "pull_request, pipeline_finished (or workflow_run), manual, ci" in triggers.message
    # An unknown key points at the key itself and lists what is allowed instead.
    assert (unknown.key, unknown.line) == ("suites[0].timeout", 6)
    assert unknown.message.startswith("unknown key; allowed keys: name, triggers, drafts")


def test_yaml_errors_carry_the_parser_problem_and_line() -> None:
    [problem] = _problems("suites:\n  - name: unit\n    bad: indent: here\n")
    assert (problem.line, problem.column) == (3, 16)
    assert problem.key is None
    assert problem.message == "not valid YAML: mapping values are not allowed here"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("suites: [unit]\n", "must be a mapping of keys to values (for example: name: unit)"),
        ("suites:\n  - name: 'a b'\n", "may contain only letters, digits, '.', '_' and '-'"),
        ("1: x\n", "keys must be strings"),
    ],
)
def test_messages_name_no_internals(text: str, message: str) -> None:
    [problem] = _problems(text)
    assert problem.message == message


def test_offending_values_are_never_quoted() -> None:
    secret = "ghp_" + "A" * 36
    problems = _problems(f"version: {secret}\nsuites:\n  - drafts: '{secret}'\n")
    assert [p.key for p in problems] == ["version", "suites[0].drafts"]
    assert all(secret not in str(p) for p in problems)


def test_too_large_and_many_problems() -> None:
    [big] = _problems("#" * (MAX_CONFIG_BYTES + 1))
    assert big.message == "the file is larger than 64 KiB"
    many = "suites:\n" + "".join(f"  - name: s{i}\n    nope: 1\n" for i in range(30))
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(many)
    assert len(info.value.problems) == 10
    assert str(info.value).endswith("(and 9 more)")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"suites:\n  - name: caf\xe9\n", "not UTF-8 text"),
        ("version: 1\nsuites: \x07\n", "not valid YAML: special characters are not allowed"),
    ],
)
def test_unreadable_text_is_a_problem_with_its_line(text: str | bytes, message: str) -> None:
    [problem] = _problems(text)
    assert (problem.message, problem.line) == (message, 2)


RUN_SUITE = """
suites:
  - name: unit
    triggers: [pull_request, workflow_run, manual]
    run:
      command: pytest --junitxml=out/junit.xml
      image: python:3.12-slim
      workdir: services/api
      env:
        PORT: 8080
        MODE: ci
        PYPI_TOKEN: {secret: PYPI_TOKEN}
      timeout: 600
      results: "out/*.xml"
      labels: [linux, big]
"""


def test_run_suite_with_secret_references() -> None:
    [suite] = parse_repo_config(RUN_SUITE).suites
    assert suite.run is not None
    assert suite.triggers == ["pull_request", "pipeline_finished", "manual"]
    assert suite.run.env["PORT"] == "8080"
    assert suite.run.secret_names() == ["PYPI_TOKEN"]
    assert (suite.run.timeout, suite.run.results, suite.run.labels) == (
        600,
        "out/*.xml",
        ["linux", "big"],
    )
    config = parse_repo_config(RUN_SUITE)
    # The earlier GitHub name still selects the suite for a finished pipeline.
    assert config.suites_for("workflow_run") == config.suites_for("pipeline_finished") == [suite]
    assert config.suites_for("manual") == [suite]


def test_default_suite_is_a_report_suite() -> None:
    [suite] = DEFAULT_CONFIG.suites
    assert suite.run is None
    assert DEFAULT_CONFIG.suites_for("workflow_run") == [suite]


@pytest.mark.parametrize(
    ("text", "key", "line", "needle"),
    [
        # A literal value under a secret-looking name: refused, and the value never echoed.
        (
            "suites:\n  - run:\n      command: make\n      env:\n"
            "        API_TOKEN: hunter2hunter2\n",
            "suites[0].run.env",
            5,
            "looks like a secret",
        ),
        (
            "suites:\n  - run:\n      command: make\n      colour: red\n",
            "suites[0].run.colour",
            4,
            "allowed keys: command, image",
        ),
        (
            "suites:\n  - run:\n      command: make\n      timeout: 0\n",
            "suites[0].run.timeout",
            4,
            "greater than or equal to 1",
        ),
        (
            "suites:\n  - run:\n      command: make\n      workdir: ../up\n",
            "suites[0].run.workdir",
            4,
            "inside the repository",
        ),
        (
            "suites:\n  - run:\n      command: make\n      env:\n        X: {secret: 'a b'}\n",
            "suites[0].run.env.X.secret",
            5,
            "may contain only",
        ),
        (
            "suites:\n  - run:\n      command: make\n      env:\n        X: {vault: A}\n",
            "suites[0].run.env.X.vault",
            5,
            "allowed keys: secret",
        ),
        (
            "suites:\n  - run:\n      command: make\n      env:\n        GIT_DIR: x\n",
            "suites[0].run.env",
            5,
            "reserved",
        ),
        ("suites:\n  - report: true\n    run:\n      command: make\n", "suites[0]", 2, "not both"),
        (
            "suites:\n  - run:\n      image: 'bad image'\n      command: x\n",
            "suites[0].run.image",
            3,
            "container image reference",
        ),
        ("suites:\n  - triggers: [push]\n", "suites[0].triggers[0]", 2, "unknown trigger"),
    ],
)
def test_run_problems_quote_key_and_line(text: str, key: str, line: int, needle: str) -> None:
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(text)
    problem = next(p for p in info.value.problems if p.key == key)
    assert problem.line == line
    assert needle in problem.message
    assert "hunter2" not in str(info.value)
