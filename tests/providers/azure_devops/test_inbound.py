"""Service-hook verification and parsing (pure), on Microsoft's documented sample payloads."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from providers.azure_devops.inbound import parse_event, presented_secret, verify_delivery
from providers.events import (
    ChangeClosed,
    ChangeOpened,
    ChangeUpdated,
    Ignore,
    PipelineFinished,
    RerunRequested,
    RunApproved,
)
from providers.inbound import WebhookRejected

FIXTURES = Path(__file__).parents[2] / "fixtures" / "azure_devops" / "webhooks"
SECRET = "hook-secret-0123456789abcdef"


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def basic(password: str, user: str = "aac") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_password_or_secret_header_is_presented() -> None:
    assert presented_secret(basic(SECRET)) == SECRET
    assert presented_secret(basic(SECRET, user="")) == SECRET
    assert presented_secret({"x-aac-webhook-secret": SECRET}) == SECRET
    assert presented_secret({"authorization": "Basic !!!"}) is None
    assert presented_secret({"authorization": "Bearer x"}) is None
    assert presented_secret({}) is None


def test_a_verified_delivery_is_keyed_by_the_notification_id() -> None:
    body = (FIXTURES / "git.pullrequest.created.json").read_bytes()
    delivery = verify_delivery(basic(SECRET), body, SECRET, 3)
    assert (delivery.delivery_id, delivery.event, delivery.org_id) == (
        "2ab4e3d3-b7a6-425e-92b1-5a9982c1269e",
        "git.pullrequest.created",
        3,
    )


@pytest.mark.parametrize(
    ("headers", "secret", "code"),
    [
        ({}, SECRET, "credentials_missing"),
        (basic("wrong"), SECRET, "credentials_invalid"),
        (basic(SECRET), None, "credentials_invalid"),  # unknown org: told apart from nothing
    ],
)
def test_bad_credentials_are_401_without_quoting_anything(
    headers: dict[str, str], secret: str | None, code: str
) -> None:
    with pytest.raises(WebhookRejected) as caught:
        verify_delivery(headers, b'{"id": "x", "eventType": "git.push"}', secret, 1)
    assert (caught.value.status, caught.value.code) == (401, code)
    assert SECRET not in caught.value.detail


@pytest.mark.parametrize(
    "body", [b"not json", b"[1]", b'{"eventType": "git.push"}', b'{"id": "x"}']
)
def test_a_body_without_id_or_event_is_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as caught:
        verify_delivery(basic(SECRET), body, SECRET, 1)
    assert caught.value.status == 400


def test_the_test_button_is_a_ping() -> None:
    payload = {
        **sample("git.pullrequest.created"),
        "subscriptionId": "0" * 8 + "-0000" * 3 + "-" + "0" * 12,
    }
    delivery = verify_delivery(basic(SECRET), json.dumps(payload).encode(), SECRET, 1)
    assert delivery.event == "ping"


def test_pull_request_created_opens_at_the_source_commit() -> None:
    event = parse_event(
        "git.pullrequest.created", sample("git.pullrequest.created"), bot_logins=set()
    )
    assert isinstance(event, ChangeOpened)
    assert not isinstance(event, ChangeUpdated)
    assert (event.repository, event.number, event.sha, event.ref, event.base_ref) == (
        "Fabrikam/Fabrikam",
        1,
        "53d54ac915144006c2c9e90d2c7d3880920db49c",
        "mytopic",
        "master",
    )
    assert (event.source, event.host) == ("azure", "dev.azure.com")


def test_live_payloads_name_their_collection_host() -> None:
    payload = sample("git.pullrequest.created")
    payload["resourceContainers"]["collection"]["baseUrl"] = "https://tfs.example.com/tfs/Main/"
    event = parse_event("git.pullrequest.created", payload, bot_logins=set())
    assert (event.host, event.api_url) == ("tfs.example.com", "https://tfs.example.com/tfs/Main")


def test_an_active_update_is_an_update_and_completed_or_abandoned_close() -> None:
    payload = sample("git.pullrequest.updated")  # the documented sample: marked completed
    assert isinstance(
        parse_event("git.pullrequest.updated", payload, bot_logins=set()), ChangeClosed
    )
    payload["resource"]["status"] = "abandoned"
    assert isinstance(
        parse_event("git.pullrequest.updated", payload, bot_logins=set()), ChangeClosed
    )
    payload["resource"]["status"] = "active"
    assert isinstance(
        parse_event("git.pullrequest.updated", payload, bot_logins=set()), ChangeUpdated
    )
    merged = sample("git.pullrequest.merged")
    assert isinstance(parse_event("git.pullrequest.merged", merged, bot_logins=set()), ChangeClosed)
    merged["resource"]["status"] = "active"  # a merge commit on an open PR starts nothing
    assert isinstance(parse_event("git.pullrequest.merged", merged, bot_logins=set()), Ignore)


def test_build_complete_names_run_project_ref_and_commit() -> None:
    event = parse_event("build.complete", sample("build.complete"), bot_logins=set())
    assert isinstance(event, PipelineFinished)
    assert (event.pipeline_id, event.project, event.ref, event.sha, event.conclusion) == (
        "2",
        "be9b3917-87e6-42a4-a549-2bc06a7a878f",
        "master",
        "600c52d2d5b655caa111abfd863e5a9bd304bb0e",
        "success",
    )
    assert event.repository == ""  # completed from the Build API by the provider


def test_a_completed_run_is_a_finished_pipeline_and_a_running_one_is_not() -> None:
    payload = sample("ms.vss-pipelines.run-state-changed-event")
    event = parse_event(payload["eventType"], payload, bot_logins=set())
    assert isinstance(event, PipelineFinished)
    assert (event.pipeline_id, event.name, event.conclusion) == ("11", "TEST-CI", "success")
    del payload["resourceContainers"]["project"]  # then the run's URL names the project
    event = parse_event(payload["eventType"], payload, bot_logins=set())
    assert isinstance(event, PipelineFinished)
    assert event.project == "863d0a5b-3c91-4bf3-8ad7-7f33736b7f4c"
    payload["resource"]["run"]["state"] = "inProgress"
    assert isinstance(parse_event(payload["eventType"], payload, bot_logins=set()), Ignore)


def test_a_comment_command_asks_for_a_permission_check_by_identity_id() -> None:
    payload = sample("ms.vss-code.git-pullrequest-comment-event")
    name = payload["eventType"]
    assert isinstance(parse_event(name, payload, bot_logins=set()), Ignore)  # no command
    payload["resource"]["comment"]["content"] = "thanks\n/aac rerun"
    event = parse_event(name, payload, bot_logins=set())
    assert isinstance(event, RerunRequested)
    assert (event.repository, event.number, event.reanalyse) == ("Fabrikam/Fabrikam", 1, False)
    assert event.requested_by == "54d125f7-69f7-4191-904f-c5b96b6261c8"
    assert event.needs_permission_check
    own = parse_event(name, payload, bot_logins={"fabrikamfiber4@hotmail.com"})
    assert isinstance(own, Ignore)


def test_a_pull_request_from_a_fork_names_its_fork_source() -> None:
    payload = sample("git.pullrequest.created")
    same = parse_event("git.pullrequest.created", payload, bot_logins=set())
    assert isinstance(same, ChangeOpened)
    assert (same.from_fork, same.head_repository) == (False, same.repository)
    fork_repo = {"name": "Fabrikam-fork", "project": {"name": "Forker"}}
    payload["resource"]["forkSource"] = {"name": "refs/heads/x", "repository": fork_repo}
    fork = parse_event("git.pullrequest.created", payload, bot_logins=set())
    assert isinstance(fork, ChangeOpened)
    assert (fork.from_fork, fork.head_repository) == (True, "Forker/Fabrikam-fork")


def test_aac_approve_in_a_comment_asks_to_release_a_forks_run() -> None:
    payload = sample("ms.vss-code.git-pullrequest-comment-event")
    payload["resource"]["comment"]["content"] = "/aac approve"
    event = parse_event(payload["eventType"], payload, bot_logins=set())
    assert isinstance(event, RunApproved)
    assert (event.repository, event.number) == ("Fabrikam/Fabrikam", 1)
    assert event.requested_by == "54d125f7-69f7-4191-904f-c5b96b6261c8"
