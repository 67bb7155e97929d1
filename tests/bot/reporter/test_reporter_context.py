"""Context detection from recorded runner environments, overrides and missing fields."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.reporter.context import (
    ContextOverrides,
    DetectedContext,
    MissingContextError,
    detect_ci_context,
    idempotency_key,
    resolve_context,
)

FIXTURES = Path(__file__).parent / "fixtures"
EVENT_PATH = "/home/runner/work/_temp/_github_workflow/event.json"


def load_env(name: str) -> dict[str, str]:
    env: dict[str, str] = json.loads((FIXTURES / "env" / f"{name}.json").read_text())
    return env


def event_reader(event_file: str) -> Callable[[str], bytes]:
    """Stands in for the runner's disk: GITHUB_EVENT_PATH holds the given recorded event."""

    def read(path: str) -> bytes:
        assert path == EVENT_PATH
        return (FIXTURES / "github" / event_file).read_bytes()

    return read


# Each case: fixture, the fields expected (all others must be None / default).
CASES: dict[str, dict[str, Any]] = {
    "github_actions_pull_request": {
        "runner": "github-actions",
        "source": "github",
        "repository": "acme-corp/payments-api",
        # The PR head from the event file, not GITHUB_SHA (the merge commit).
        "sha": "f1e2d3c4b5a69788990a1b2c3d4e5f6071829304",
        "pr": 1347,
        "ref": "feature/flaky-login",
        "base_ref": "main",
        "pipeline_id": "7412309876",
        "pipeline_url": "https://github.com/acme-corp/payments-api/actions/runs/7412309876",
        "run_attempt": 2,
        "job_id": "test",
        "event": "pull_request",
    },
    "github_actions_push": {
        "runner": "github-actions",
        "source": "github",
        "repository": "acme-corp/payments-api",
        "sha": "9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
        "ref": "release/2.4",
        "pipeline_id": "7412300001",
        "pipeline_url": "https://github.com/acme-corp/payments-api/actions/runs/7412300001",
        "run_attempt": 1,
        "job_id": "test",
        "event": "push",
    },
    "gitlab_ci_merge_request": {
        "runner": "gitlab-ci",
        "source": "gitlab",
        "repository": "platform/backend/billing",
        "sha": "1234abcd5678ef901234abcd5678ef901234abcd",
        "pr": 88,
        "ref": "fix/rounding",
        "base_ref": "main",
        "pipeline_id": "998877",
        "pipeline_url": "https://gitlab.example.com/platform/backend/billing/-/pipelines/998877",
        "job_id": "6621034",
        "event": "merge_request_event",
    },
    "gitlab_ci_branch": {
        "runner": "gitlab-ci",
        "source": "gitlab",
        "repository": "acme/tools",
        "sha": "bbbb2222cccc3333dddd4444eeee5555ffff6666",
        "ref": "main",
        "pipeline_id": "998900",
        "pipeline_url": "https://gitlab.com/acme/tools/-/pipelines/998900",
        "job_id": "6621100",
        "event": "push",
    },
    "azure_pipelines_azure_repos_pr": {
        "runner": "azure-pipelines",
        "source": "azure",
        "repository": "Fabrikam Payments/billing",
        "sha": "d00dfeedd00dfeedd00dfeedd00dfeedd00dfeed",
        "pr": 412,
        "ref": "feature/ledger",
        "base_ref": "main",
        "pipeline_id": "20931",
        "pipeline_url": "https://dev.azure.com/contoso/Fabrikam%20Payments/_build/results?buildId=20931",
        "run_attempt": 1,
        "job_id": "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
        "event": "PullRequest",
    },
    "azure_pipelines_github_pr": {
        "runner": "azure-pipelines",
        "source": "github",
        "repository": "acme-corp/payments-api",
        "sha": "f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2",
        # The GitHub PR number, not Azure's internal PR id.
        "pr": 77,
        "ref": "feature/retry",
        "base_ref": "main",
        "pipeline_id": "20950",
        "pipeline_url": "https://dev.azure.com/contoso/OSS/_build/results?buildId=20950",
        "run_attempt": 3,
        "job_id": "0f8e4a1c-aaaa-bbbb-cccc-ddddeeeeffff",
        "event": "PullRequest",
    },
    "jenkins_multibranch_pr": {
        "runner": "jenkins",
        "source": "github",
        "repository": "acme-corp/payments-api",
        "sha": "abcdefabcdefabcdefabcdefabcdefabcdefabcd",
        "pr": 1350,
        "ref": "feature/ledger-v2",
        "base_ref": "main",
        "pipeline_id": "14",
        "pipeline_url": "https://ci.example.org/job/payments-api/job/PR-1350/14/",
        "job_id": "payments-api/PR-1350",
    },
    "jenkins_freestyle": {
        "runner": "jenkins",
        "source": "jenkins",
        "repository": "team/monolith",
        "sha": "1111222233334444555566667777888899990000",
        "ref": "develop",
        "pipeline_id": "311",
        "pipeline_url": "http://jenkins.internal:8080/job/nightly/311/",
        "job_id": "nightly",
    },
    "circleci_pr": {
        "runner": "circleci",
        "source": "github",
        "repository": "acme-corp/payments-api",
        "sha": "5555666677778888999900001111222233334444",
        "pr": 1352,
        "ref": "feature/cache",
        "pipeline_id": "8f1b4d3e-2c9a-4e6b-8d7f-1a2b3c4d5e6f",
        "pipeline_url": "https://circleci.com/gh/acme-corp/payments-api/9031",
        "job_id": "9031",
    },
    "buildkite_pr": {
        "runner": "buildkite",
        "source": "github",
        "repository": "acme-corp/payments-api",
        "sha": "a0bd708bcdebced545b62a842a0350ccd1d683b7",
        "pr": 1360,
        "ref": "feature/parallel",
        "base_ref": "main",
        "pipeline_id": "b81ed283-58b7-4925-aa4a-d3da0eafcf2b",
        "pipeline_url": "https://buildkite.com/acme/payments-api/builds/59034",
        "run_attempt": 2,
        "job_id": "d593f546-8c9a-45f8-8701-a2b92fbea9a7",
        "event": "webhook",
    },
    "bitbucket_pipelines_pr": {
        "runner": "bitbucket-pipelines",
        "source": "bitbucket-pipelines",
        "repository": "acme-team/ledger",
        "sha": "77778888999900001111222233334444aaaabbbb",
        "pr": 58,
        "ref": "feature/audit-log",
        "base_ref": "main",
        "pipeline_id": "1204",
        "pipeline_url": "http://bitbucket.org/acme-team/ledger/pipelines/results/1204",
        "job_id": "{a1b2c3d4-e5f6-4711-8899-aabbccddeeff}",
    },
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_detects_every_field_from_a_recorded_environment(name: str) -> None:
    event_file = "push_event.json" if name.endswith("push") else "pull_request_event.json"

    detected = detect_ci_context(load_env(name), read_file=event_reader(event_file))

    assert detected == DetectedContext(**CASES[name])


def test_push_event_file_without_pull_request_keeps_github_sha() -> None:
    env = load_env("github_actions_push")

    detected = detect_ci_context(env, read_file=event_reader("push_event.json"))

    assert detected.sha == env["GITHUB_SHA"]
    assert detected.pr is None


def test_github_without_event_reader_falls_back_to_the_ref_and_says_so() -> None:
    detected = detect_ci_context(load_env("github_actions_pull_request"))

    assert detected.pr == 1347
    assert detected.sha == "8a3f5c1e9b2d4f6a7c8e0b1d2f3a4c5e6b7d8f90"
    assert any("merge commit" in note for note in detected.notes)


def test_unreadable_event_file_is_a_note_not_a_crash() -> None:
    def broken(_path: str) -> bytes:
        raise FileNotFoundError(_path)

    detected = detect_ci_context(load_env("github_actions_pull_request"), read_file=broken)

    assert detected.pr == 1347
    assert detected.notes == (
        "could not read the event file GITHUB_EVENT_PATH (FileNotFoundError)",
    )


def test_buildkite_literal_head_is_not_a_sha() -> None:
    detected = detect_ci_context(load_env("buildkite_manual"))

    assert detected.sha is None
    assert detected.pr is None  # "false"
    assert detected.base_ref is None
    assert detected.source == "gitlab"
    assert detected.repository == "acme/infra"
    assert detected.run_attempt == 1
    assert "--sha" in detected.notes[0]


def test_jenkins_credentials_in_git_url_never_reach_the_context() -> None:
    detected = detect_ci_context(load_env("jenkins_multibranch_pr"))

    assert "s3cr3t" not in repr(detected)


def test_no_runner_detected() -> None:
    assert detect_ci_context({"HOME": "/root", "PATH": "/bin"}) == DetectedContext(runner="none")


def test_github_wins_over_leaked_jenkins_url() -> None:
    env = {**load_env("github_actions_push"), "JENKINS_URL": "https://ci.example.org/"}

    assert detect_ci_context(env).runner == "github-actions"


def test_resolve_uses_detection_and_defaults() -> None:
    detected = detect_ci_context(load_env("gitlab_ci_merge_request"))

    ctx = resolve_context(detected, ContextOverrides())

    assert ctx.to_json() == {
        "source": "gitlab",
        "repository": "platform/backend/billing",
        "sha": "1234abcd5678ef901234abcd5678ef901234abcd",
        "pr": 88,
        "ref": "fix/rounding",
        "base_ref": "main",
        "pipeline_id": "998877",
        "pipeline_url": "https://gitlab.example.com/platform/backend/billing/-/pipelines/998877",
        "run_attempt": 1,
        "suite": "tests",
        "trigger": "ci",
        "extra": {},
    }


def test_every_field_can_be_overridden() -> None:
    detected = detect_ci_context(load_env("jenkins_freestyle"))
    overrides = ContextOverrides(
        source="GitLab",
        repository="grp/sub/proj.git",
        sha="ABCDEF0123456789ABCDEF0123456789ABCDEF01",
        pr=5,
        ref="topic",
        base_ref="develop",
        pipeline_id="p-1",
        pipeline_url="https://ci/p-1",
        run_attempt=4,
        suite="integration",
        trigger="manual",
    )

    ctx = resolve_context(detected, overrides)

    assert (ctx.source, ctx.repository, ctx.sha) == (
        "gitlab",
        "grp/sub/proj",
        "abcdef0123456789abcdef0123456789abcdef01",
    )
    assert (ctx.pr, ctx.ref, ctx.base_ref) == (5, "topic", "develop")
    assert (ctx.pipeline_id, ctx.pipeline_url, ctx.run_attempt) == ("p-1", "https://ci/p-1", 4)
    assert (ctx.suite, ctx.trigger) == ("integration", "manual")


def test_missing_fields_name_the_flags() -> None:
    with pytest.raises(MissingContextError) as info:
        resolve_context(detect_ci_context({}), ContextOverrides())

    assert info.value.flags == ["--repository", "--sha"]
    assert "no CI runner was detected" in str(info.value)


def test_missing_sha_names_only_sha_and_the_runner() -> None:
    with pytest.raises(MissingContextError) as info:
        resolve_context(detect_ci_context(load_env("buildkite_manual")), ContextOverrides())

    assert info.value.flags == ["--sha"]
    assert "buildkite" in str(info.value)


def test_local_run_with_flags_gets_source_local() -> None:
    ctx = resolve_context(detect_ci_context({}), ContextOverrides(repository="o/r", sha="abc"))

    assert ctx.source == "local"
    assert not ctx.publishes


def test_idempotency_key_is_stable_and_distinguishes_jobs_and_suites() -> None:
    ctx = resolve_context(detect_ci_context(load_env("gitlab_ci_branch")), ContextOverrides())
    again = resolve_context(detect_ci_context(load_env("gitlab_ci_branch")), ContextOverrides())
    other_suite = resolve_context(
        detect_ci_context(load_env("gitlab_ci_branch")), ContextOverrides(suite="e2e")
    )

    assert idempotency_key(ctx, "1") == idempotency_key(again, "1")
    assert idempotency_key(ctx, "1") != idempotency_key(ctx, "2")
    assert idempotency_key(ctx, "1") != idempotency_key(other_suite, "1")
