"""One pure detector per CI runner: environment variables in, DetectedContext out."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bot.reporter.detected import DetectedContext
from bot.reporter.repo_names import pr_number_from_url, repository_from_url, scm_from_url

Env = Mapping[str, str]
ReadFile = Callable[[str], bytes]


def _get(env: Env, name: str) -> str | None:
    """The variable's value, with unset, empty and whitespace-only all meaning None."""
    value = env.get(name, "").strip()
    return value or None


def _first(env: Env, *names: str) -> str | None:
    for name in names:
        if (value := _get(env, name)) is not None:
            return value
    return None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _branch(ref: str | None) -> str | None:
    """Short branch or tag name from a full git ref (`refs/heads/x` -> `x`)."""
    if ref is None:
        return None
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :] or None
    return ref


def _truthy(env: Env, name: str) -> bool:
    return (_get(env, name) or "").lower() in {"true", "1", "yes"}


# ---------------------------------------------------------------------------------------
# GitHub Actions
# ---------------------------------------------------------------------------------------
_PR_EVENTS = frozenset({"pull_request", "pull_request_target", "pull_request_review"})


def _read_event(env: Env, read_file: ReadFile | None) -> tuple[dict[str, Any], str | None]:
    path = _get(env, "GITHUB_EVENT_PATH")
    if path is None or read_file is None:
        return {}, None
    try:
        event = json.loads(read_file(path))
    except (OSError, ValueError) as exc:
        return {}, f"could not read the event file GITHUB_EVENT_PATH ({type(exc).__name__})"
    return (event, None) if isinstance(event, dict) else ({}, None)


def github_actions(env: Env, read_file: ReadFile | None) -> DetectedContext:
    """GitHub Actions; on pull_request events the PR head sha, not the merge commit."""
    event, note = _read_event(env, read_file)
    event_name = _get(env, "GITHUB_EVENT_NAME")
    pull = event.get("pull_request") if isinstance(event.get("pull_request"), dict) else None
    pr: int | None = None
    sha = _get(env, "GITHUB_SHA")
    if pull is not None:
        pr = pull.get("number") if isinstance(pull.get("number"), int) else None
        head = pull.get("head")
        if isinstance(head, dict) and isinstance(head.get("sha"), str) and head["sha"]:
            sha = head["sha"]
    ref = _get(env, "GITHUB_REF")
    if pr is None and ref is not None and ref.startswith("refs/pull/"):
        pr = _int(ref.split("/")[2])
    repository = _get(env, "GITHUB_REPOSITORY")
    run_id = _get(env, "GITHUB_RUN_ID")
    server = (_get(env, "GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    url = f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else None
    notes = (note,) if note else ()
    if event_name in _PR_EVENTS and pull is None and note is None:
        notes = (*notes, "pull_request event without an event file: GITHUB_SHA is the merge commit")
    return DetectedContext(
        runner="github-actions",
        source="github",
        repository=repository,
        sha=sha,
        pr=pr,
        ref=_get(env, "GITHUB_HEAD_REF") or _get(env, "GITHUB_REF_NAME") or _branch(ref),
        base_ref=_get(env, "GITHUB_BASE_REF"),
        pipeline_id=run_id,
        pipeline_url=url,
        run_attempt=_int(_get(env, "GITHUB_RUN_ATTEMPT")),
        job_id=_get(env, "GITHUB_JOB"),
        event=event_name,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------
# GitLab CI
# ---------------------------------------------------------------------------------------
def gitlab_ci(env: Env, read_file: ReadFile | None) -> DetectedContext:
    """GitLab CI; in merged-results pipelines the MR source branch sha, not the merge ref."""
    return DetectedContext(
        runner="gitlab-ci",
        source="gitlab",
        repository=_get(env, "CI_PROJECT_PATH"),
        sha=_first(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", "CI_COMMIT_SHA"),
        pr=_int(_get(env, "CI_MERGE_REQUEST_IID")),
        ref=_first(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_REF_NAME"),
        base_ref=_get(env, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
        pipeline_id=_get(env, "CI_PIPELINE_ID"),
        pipeline_url=_get(env, "CI_PIPELINE_URL"),
        job_id=_get(env, "CI_JOB_ID"),
        event=_get(env, "CI_PIPELINE_SOURCE"),
    )


# ---------------------------------------------------------------------------------------
# Azure Pipelines
# ---------------------------------------------------------------------------------------
_AZURE_PROVIDERS = {"tfsgit": "azure", "github": "github", "githubenterprise": "github"}


def azure_pipelines(env: Env, read_file: ReadFile | None) -> DetectedContext:
    """Azure Pipelines, for Azure Repos (`project/repo`) and GitHub (`owner/repo`) sources."""
    provider = (_get(env, "BUILD_REPOSITORY_PROVIDER") or "").lower()
    source = _AZURE_PROVIDERS.get(provider) or scm_from_url(_get(env, "BUILD_REPOSITORY_URI"))
    name = _get(env, "BUILD_REPOSITORY_NAME")
    project = _get(env, "SYSTEM_TEAMPROJECT")
    repository = name
    if source == "azure" and name is not None and "/" not in name and project is not None:
        # Repository names are unique per project; the organisation is the integration's URL.
        repository = f"{project}/{name}"
    if source == "github":
        pr = _int(_first(env, "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER"))
        pr = pr if pr is not None else _int(_get(env, "SYSTEM_PULLREQUEST_PULLREQUESTID"))
    else:
        pr = _int(_get(env, "SYSTEM_PULLREQUEST_PULLREQUESTID"))
    build_id = _get(env, "BUILD_BUILDID")
    collection = _get(env, "SYSTEM_COLLECTIONURI")
    url = None
    if collection and project and build_id:
        base = collection.rstrip("/")
        url = f"{base}/{quote(project)}/_build/results?buildId={build_id}"
    return DetectedContext(
        runner="azure-pipelines",
        source=source or "azure-pipelines",
        repository=repository,
        sha=_first(env, "SYSTEM_PULLREQUEST_SOURCECOMMITID", "BUILD_SOURCEVERSION"),
        pr=pr,
        ref=_branch(_first(env, "SYSTEM_PULLREQUEST_SOURCEBRANCH", "BUILD_SOURCEBRANCH")),
        base_ref=_branch(_get(env, "SYSTEM_PULLREQUEST_TARGETBRANCH")) if pr else None,
        pipeline_id=build_id,
        pipeline_url=url,
        run_attempt=_int(_get(env, "SYSTEM_JOBATTEMPT")),
        job_id=_get(env, "SYSTEM_JOBID"),
        event=_get(env, "BUILD_REASON"),
    )


# ---------------------------------------------------------------------------------------
# Jenkins
# ---------------------------------------------------------------------------------------
def jenkins(env: Env, read_file: ReadFile | None) -> DetectedContext:
    """Jenkins (multibranch CHANGE_* for PRs); the SCM comes from the remote's host."""
    git_url = _get(env, "GIT_URL")
    change_url = _get(env, "CHANGE_URL")
    source = scm_from_url(git_url) or scm_from_url(change_url) or "jenkins"
    branch = _first(env, "CHANGE_BRANCH", "BRANCH_NAME", "GIT_BRANCH")
    if branch is not None and branch.startswith("origin/"):
        branch = branch[len("origin/") :]
    return DetectedContext(
        runner="jenkins",
        source=source,
        repository=repository_from_url(git_url),
        sha=_get(env, "GIT_COMMIT"),
        pr=_int(_get(env, "CHANGE_ID")),
        ref=branch,
        base_ref=_get(env, "CHANGE_TARGET"),
        pipeline_id=_get(env, "BUILD_NUMBER"),
        pipeline_url=_get(env, "BUILD_URL"),
        # BUILD_NUMBER restarts per job: the job name tells two jobs' build #7 apart.
        job_id=_get(env, "JOB_NAME"),
    )


# ---------------------------------------------------------------------------------------
# CircleCI
# ---------------------------------------------------------------------------------------
def circleci(env: Env, read_file: ReadFile | None) -> DetectedContext:
    """CircleCI; the PR number is the tail of CIRCLE_PULL_REQUEST's URL."""
    user, name = _get(env, "CIRCLE_PROJECT_USERNAME"), _get(env, "CIRCLE_PROJECT_REPONAME")
    repository = f"{user}/{name}" if user and name else None
    repo_url = _get(env, "CIRCLE_REPOSITORY_URL")
    pr_url = _get(env, "CIRCLE_PULL_REQUEST")
    pr = pr_number_from_url(pr_url)
    if pr is None:
        pr = _int(_get(env, "CIRCLE_PR_NUMBER"))
    return DetectedContext(
        runner="circleci",
        source=scm_from_url(repo_url) or scm_from_url(pr_url) or "circleci",
        repository=repository or repository_from_url(repo_url),
        sha=_get(env, "CIRCLE_SHA1"),
        pr=pr,
        ref=_first(env, "CIRCLE_BRANCH", "CIRCLE_TAG"),
        pipeline_id=_get(env, "CIRCLE_WORKFLOW_ID"),
        pipeline_url=_get(env, "CIRCLE_BUILD_URL"),
        job_id=_first(env, "CIRCLE_BUILD_NUM", "CIRCLE_JOB"),
    )


# ---------------------------------------------------------------------------------------
# Buildkite
# ---------------------------------------------------------------------------------------
def buildkite(env: Env, read_file: ReadFile | None) -> DetectedContext:
    """Buildkite; BUILDKITE_PULL_REQUEST is "false" outside PR builds."""
    repo_url = _get(env, "BUILDKITE_REPO")
    sha = _get(env, "BUILDKITE_COMMIT")
    notes: tuple[str, ...] = ()
    if sha is not None and sha.upper() == "HEAD":
        # Builds started by hand carry the literal "HEAD"; it names no commit.
        sha = None
        notes = ('BUILDKITE_COMMIT is HEAD; pass --sha "$(git rev-parse HEAD)"',)
    retries = _int(_get(env, "BUILDKITE_RETRY_COUNT"))
    return DetectedContext(
        runner="buildkite",
        source=scm_from_url(repo_url) or "buildkite",
        repository=repository_from_url(repo_url),
        sha=sha,
        pr=_int(_get(env, "BUILDKITE_PULL_REQUEST")),
        ref=_first(env, "BUILDKITE_BRANCH", "BUILDKITE_TAG"),
        base_ref=_get(env, "BUILDKITE_PULL_REQUEST_BASE_BRANCH"),
        pipeline_id=_get(env, "BUILDKITE_BUILD_ID"),
        pipeline_url=_get(env, "BUILDKITE_BUILD_URL"),
        run_attempt=retries + 1 if retries is not None else None,
        job_id=_get(env, "BUILDKITE_JOB_ID"),
        event=_get(env, "BUILDKITE_SOURCE"),
        notes=notes,
    )


# ---------------------------------------------------------------------------------------
# Bitbucket Pipelines
# ---------------------------------------------------------------------------------------
def bitbucket_pipelines(env: Env, read_file: ReadFile | None) -> DetectedContext:
    """Bitbucket Pipelines: results are stored and analysed; Bitbucket itself is not an SCM."""
    repository = _get(env, "BITBUCKET_REPO_FULL_NAME")
    build = _get(env, "BITBUCKET_BUILD_NUMBER")
    origin = _get(env, "BITBUCKET_GIT_HTTP_ORIGIN")
    url = None
    if build is not None and (origin or repository):
        base = origin.rstrip("/") if origin else f"https://bitbucket.org/{repository}"
        url = f"{base}/pipelines/results/{build}"
    return DetectedContext(
        runner="bitbucket-pipelines",
        source="bitbucket-pipelines",
        repository=repository or repository_from_url(origin),
        sha=_get(env, "BITBUCKET_COMMIT"),
        pr=_int(_get(env, "BITBUCKET_PR_ID")),
        ref=_first(env, "BITBUCKET_BRANCH", "BITBUCKET_TAG"),
        base_ref=_get(env, "BITBUCKET_PR_DESTINATION_BRANCH"),
        pipeline_id=build,
        pipeline_url=url,
        job_id=_get(env, "BITBUCKET_STEP_UUID"),
    )


# ---------------------------------------------------------------------------------------
# The table, in detection order
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Runner:
    """A CI runner: how to tell it is the one running, and how to read its variables."""

    name: str
    is_active: Callable[[Env], bool]
    detect: Callable[[Env, ReadFile | None], DetectedContext]


RUNNERS: tuple[Runner, ...] = (
    Runner("github-actions", lambda env: _truthy(env, "GITHUB_ACTIONS"), github_actions),
    Runner("gitlab-ci", lambda env: _get(env, "GITLAB_CI") is not None, gitlab_ci),
    Runner("azure-pipelines", lambda env: _truthy(env, "TF_BUILD"), azure_pipelines),
    Runner("buildkite", lambda env: _truthy(env, "BUILDKITE"), buildkite),
    Runner("circleci", lambda env: _truthy(env, "CIRCLECI"), circleci),
    Runner(
        "bitbucket-pipelines",
        lambda env: _get(env, "BITBUCKET_BUILD_NUMBER") is not None,
        bitbucket_pipelines,
    ),
    # Last: Jenkins agents often run the others' tooling and JENKINS_URL leaks into shells.
    Runner("jenkins", lambda env: _get(env, "JENKINS_URL") is not None, jenkins),
)
