"""The fake itself: discovery derived from the SDK and the specs, bodies validated by them."""

from __future__ import annotations

import base64

import httpx
from azure.devops.v7_1.build.models import UpdateStageParameters

from providers.azure_devops.provider import AzureShared
from tests.fakes.azure_devops import FakeAzureDevOps, resource_locations
from tests.providers.azure_devops.conftest import PAT, PR, PROJECT

AUTH = {"authorization": "Basic " + base64.b64encode(f":{PAT}".encode()).decode()}
# Locations the provider calls, as the SDK's clients name them.
USED = {
    "ab6e2e5d-a0b7-4153-b64a-a4efe0d49449",  # pull request threads
    "965a3ec7-5ed8-455a-bdcb-835a5ea7fe7b",  # thread comments
    "b5f6bb4f-8d1e-4d79-8d11-4c9172c99c35",  # pull request statuses
    "d43911ee-6958-46b0-a42b-8445b8a0d004",  # pull request iterations
    "428dd4fb-fda5-4722-af02-9313b80305da",  # commit statuses
    "fb93c0db-47ed-4a31-8c20-47552878fb44",  # items
    "cadb3810-d47d-4a3c-a234-fe5f3be50138",  # test runs
    "4637d869-3a76-4468-8057-0bb02aa385cf",  # test results
    "00d9565f-ed9c-4a06-9a50-00e7896ccab4",  # connection data
}


def test_options_announces_every_location_the_provider_uses(fake_azure: FakeAzureDevOps) -> None:
    response = httpx.request("OPTIONS", f"{fake_azure.url}/_apis", headers=AUTH)
    assert response.status_code == 200
    announced = {loc["id"]: loc for loc in response.json()["value"]}
    assert set(announced) >= USED
    threads = announced["ab6e2e5d-a0b7-4153-b64a-a4efe0d49449"]
    assert threads["area"] == "git"
    assert threads["routeTemplate"] == (
        "{project}/_apis/git/repositories/{repositoryId}/pullRequests/{pullRequestId}"
        "/threads/{threadId}"
    )
    assert response.json()["count"] == len(resource_locations())


def test_a_body_that_breaks_the_spec_is_refused_and_recorded(
    azure_server: FakeAzureDevOps,
) -> None:
    azure_server.reset()
    azure_server.add_pull_request(f"{PROJECT}/widgets", PR, "a" * 40)
    url = f"{azure_server.url}/{PROJECT}/_apis/git/repositories/widgets/pullRequests/{PR}/statuses"
    response = httpx.post(
        url, headers=AUTH, json={"state": "green", "context": {"genre": "aac"}, "colour": 1}
    )
    assert response.status_code == 400
    assert response.json()["typeKey"] == "InvalidArgumentValueException"
    problems = " ".join(azure_server.validation_errors)
    assert "'green' is not one of" in problems
    assert "unknown property 'colour'" in problems
    azure_server.reset()


def test_no_credentials_without_suppress_header_get_the_sign_in_page(
    fake_azure: FakeAzureDevOps,
) -> None:
    response = httpx.get(f"{fake_azure.url}/_apis/connectionData")
    assert response.status_code == 203
    assert response.headers["content-type"].startswith("text/html")
    suppressed = httpx.get(
        f"{fake_azure.url}/_apis/connectionData", headers={"X-TFS-FedAuthRedirect": "Suppress"}
    )
    assert suppressed.status_code == 401


def test_a_retried_stage_is_a_new_attempt_and_its_runs_say_so(fake_azure: FakeAzureDevOps) -> None:
    """As Azure Pipelines: the stage's record is replaced by its next attempt's, which points
    back at the first; runs published meanwhile carry that attempt, seen only with details."""
    fake_azure.add_build(
        f"{PROJECT}/widgets", 812, source_version="f" * 40, result="failed", stages={"T": "failed"}
    )
    clients = AzureShared().clients(fake_azure.url, PAT)
    [before] = clients.build.get_build_timeline(PROJECT, 812).records
    retry = UpdateStageParameters(state="retry", force_retry_all_jobs=False)
    clients.build.update_stage(retry, 812, "T", project=PROJECT)
    [after] = clients.build.get_build_timeline(PROJECT, 812).records
    assert (after.attempt, after.state, after.identifier) == (2, "pending", "T")
    [previous] = after.previous_attempts
    assert (previous.attempt, previous.record_id) == (1, before.id)
    assert after.id != before.id

    fake_azure.add_test_run(PROJECT, 812, "pytest", [], stage="T", phase="Tests")
    fake_azure.finish_stage(PROJECT, 812, "T", "succeeded")
    assert clients.build.get_build(PROJECT, 812).result == "succeeded"
    uri = "vstfs:///Build/Build/812"
    [shallow] = clients.test.get_test_runs(PROJECT, build_uri=uri)
    assert shallow.pipeline_reference is None
    [detailed] = clients.test.get_test_runs(PROJECT, build_uri=uri, include_run_details=True)
    ref = detailed.pipeline_reference
    assert ref.pipeline_id == 812
    assert (ref.stage_reference.stage_name, ref.stage_reference.attempt) == ("T", 2)
    assert (ref.phase_reference.phase_name, ref.job_reference.job_name) == ("Tests", "__default")
    assert ref.job_reference.attempt == 2
