"""GitLab's inbound half, pure: which deliveries are genuine, and what GitLab's documented
webhook payloads (tests/fixtures/gitlab/webhooks) ask the bot to do."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from providers.events import (
    ChangeClosed,
    ChangeOpened,
    ChangeUpdated,
    Ignore,
    PipelineFinished,
    RerunRequested,
    RunApproved,
)
from providers.gitlab.inbound import parse_event, sign, verify_delivery
from providers.inbound import WebhookRejected

FIXTURES = Path(__file__).parents[2] / "fixtures" / "gitlab" / "webhooks"
SECRET = "gitlab-hook-secret-8c1f"
NOW = 1_733_340_000.0
BODY = b'{"object_kind": "merge_request"}'
UUID = "8b2f4c8e-2b6a-4d5f-9d8e-1f0c2a3b4c5d"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def token_headers(**extra: str) -> dict[str, str]:
    return {
        "x-gitlab-token": SECRET,
        "x-gitlab-event": "Merge Request Hook",
        "x-gitlab-event-uuid": UUID,
        "idempotency-key": "idem-1",
        **extra,
    }


def signed_headers(secret: str = SECRET, *, at: float = NOW, body: bytes = BODY) -> dict[str, str]:
    stamp = str(int(at))
    return {
        "x-gitlab-event": "Merge Request Hook",
        "x-gitlab-event-uuid": UUID,
        "idempotency-key": "idem-1",
        "webhook-id": "idem-1",
        "webhook-timestamp": stamp,
        "webhook-signature": sign(secret, "idem-1", stamp, body),
    }


def rejected(headers: dict[str, str], secret: str | None = SECRET, body: bytes = BODY) -> str:
    with pytest.raises(WebhookRejected) as raised:
        verify_delivery(headers, body, secret, now=NOW)
    assert raised.value.status in (400, 401)
    assert SECRET not in raised.value.detail
    return f"{raised.value.status} {raised.value.code}"


def test_the_secret_token_is_accepted_and_the_idempotency_key_names_the_delivery() -> None:
    delivery = verify_delivery(token_headers(), BODY, SECRET, now=NOW)
    assert (delivery.delivery_id, delivery.event, delivery.body) == (
        "idem-1",
        "Merge Request Hook",
        BODY,
    )
    # Older GitLab sends no Idempotency-Key: the event UUID is the id then.
    headers = token_headers()
    del headers["idempotency-key"]
    assert verify_delivery(headers, BODY, SECRET, now=NOW).delivery_id == UUID


def test_missing_wrong_or_unconfigured_tokens_are_401() -> None:
    headers = token_headers()
    del headers["x-gitlab-token"]
    assert rejected(headers) == "401 token_missing"
    assert rejected(token_headers(**{"x-gitlab-token": SECRET + "x"})) == "401 token_invalid"
    assert rejected(token_headers(**{"x-gitlab-token": ""})) == "401 token_missing"
    assert rejected(token_headers(), secret=None) == "401 not_configured"


def test_signed_webhooks_verify_over_id_timestamp_and_body() -> None:
    delivery = verify_delivery(signed_headers(), BODY, SECRET, now=NOW + 299)
    assert delivery.delivery_id == "idem-1"
    # The signature alone is enough: no X-Gitlab-Token needed.
    assert "x-gitlab-token" not in signed_headers()
    # A Standard Webhooks secret ("whsec_" + base64) is used as its decoded key.
    key = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    assert verify_delivery(signed_headers(key), BODY, key, now=NOW).event == "Merge Request Hook"


def test_signed_webhooks_refuse_tampering_other_keys_and_stale_timestamps() -> None:
    assert rejected(signed_headers(), body=BODY + b" ") == "401 signature_invalid"
    assert rejected(signed_headers("another-secret")) == "401 signature_invalid"
    assert rejected(signed_headers(at=NOW - 301)) == "401 signature_expired"
    assert rejected(signed_headers(at=NOW + 301)) == "401 signature_expired"
    partial = signed_headers()
    del partial["webhook-timestamp"]
    assert rejected(partial) == "401 signature_incomplete"
    # A wrong signature is not rescued by a right token beside it.
    forged = signed_headers("another-secret") | {"x-gitlab-token": SECRET}
    assert rejected(forged) == "401 signature_invalid"


def test_one_matching_signature_among_several_is_enough() -> None:
    headers = signed_headers()
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert verify_delivery(headers, BODY, SECRET, now=NOW).delivery_id == "idem-1"


def test_malformed_event_or_delivery_headers_are_400() -> None:
    assert rejected(token_headers(**{"x-gitlab-event": ""})) == "400 event_missing"
    assert rejected(token_headers(**{"x-gitlab-event": "Hook\n"})) == "400 event_missing"
    headers = token_headers()
    del headers["idempotency-key"], headers["x-gitlab-event-uuid"]
    assert rejected(headers) == "400 delivery_missing"
    assert rejected(token_headers(**{"idempotency-key": "x" * 101})) == "400 delivery_missing"


def parse(event: str, payload: dict[str, Any], bots: set[str] | None = None) -> Any:
    return parse_event(event, payload, bot_logins=bots or set())


def test_opening_a_merge_request_starts_its_cycles() -> None:
    payload = example("merge_request.open")
    event = parse("Merge Request Hook", payload)
    assert type(event) is ChangeOpened
    attrs = payload["object_attributes"]
    assert (event.source, event.host) == ("gitlab", "example.com")
    assert event.repository == payload["project"]["path_with_namespace"]
    assert (event.number, event.sha) == (attrs["iid"], attrs["last_commit"]["id"])
    assert (event.ref, event.base_ref) == (attrs["source_branch"], attrs["target_branch"])
    assert event.draft is False
    assert event.installation_id is None  # the webhook URL names the organisation
    reopened = copy.deepcopy(payload)
    reopened["object_attributes"]["action"] = "reopen"
    assert type(parse("Merge Request Hook", reopened)) is ChangeOpened


def test_updates_start_cycles_only_for_new_commits_or_leaving_draft() -> None:
    payload = example("merge_request.open")
    payload["object_attributes"]["action"] = "update"
    # The documented example's "changes" show draft true -> false: ready for review.
    assert type(parse("Merge Request Hook", payload)) is ChangeOpened
    payload["changes"] = {"title": {"previous": "a", "current": "b"}}
    assert isinstance(parse("Merge Request Hook", payload), Ignore)  # a title edit
    payload["object_attributes"]["oldrev"] = "95790bf891e76fee5e1747ab589903a6a1f80f22"
    pushed = parse("Merge Request Hook", payload)
    assert type(pushed) is ChangeUpdated
    assert pushed.sha == payload["object_attributes"]["last_commit"]["id"]


def test_drafts_are_marked_so_suites_skip_them_by_default() -> None:
    payload = example("merge_request.open")
    payload["object_attributes"]["draft"] = True
    event = parse("Merge Request Hook", payload)
    assert isinstance(event, ChangeOpened)
    assert event.draft is True


@pytest.mark.parametrize("action", ["close", "merge"])
def test_closing_or_merging_cancels(action: str) -> None:
    payload = example("merge_request.open")
    payload["object_attributes"]["action"] = action
    event = parse("Merge Request Hook", payload)
    assert event == ChangeClosed(
        source="gitlab",
        host="example.com",
        scm_action=action,
        repository="gitlabhq/gitlab-test",
        number=1,
    )
    payload["object_attributes"]["action"] = "approved"
    assert isinstance(parse("Merge Request Hook", payload), Ignore)


def test_a_finished_pipeline_is_pipeline_finished_for_its_merge_request() -> None:
    payload = example("pipeline.success")
    event = parse("Pipeline Hook", payload)
    assert isinstance(event, PipelineFinished)
    attrs = payload["object_attributes"]
    assert (event.pipeline_id, event.sha, event.ref) == (str(attrs["id"]), attrs["sha"], "master")
    assert (event.conclusion, event.number, event.base_ref) == ("success", 1, "master")
    assert event.url == attrs["url"]
    assert event.host == "192.168.64.1:3005"
    failed = copy.deepcopy(payload)
    failed["object_attributes"]["status"] = "failed"
    assert parse("Pipeline Hook", failed).conclusion == "failure"
    failed["object_attributes"]["status"] = "canceled"
    assert parse("Pipeline Hook", failed).conclusion == "cancelled"
    for status in ("running", "pending", "created", "manual"):
        payload["object_attributes"]["status"] = status
        assert isinstance(parse("Pipeline Hook", payload), Ignore)
    branch = example("pipeline.success")
    del branch["merge_request"]
    assert parse("Pipeline Hook", branch).number is None  # its commit's cycles then


def test_aac_commands_in_merge_request_notes() -> None:
    payload = example("note.merge_request")
    assert isinstance(parse("Note Hook", payload), Ignore)  # "This MR needs work."
    payload["object_attributes"]["note"] = "Flaky again?\n/aac rerun"
    event = parse("Note Hook", payload)
    assert isinstance(event, RerunRequested)
    assert (event.number, event.requested_by, event.reanalyse) == (1, "root", False)
    assert event.repository == "gitlab-org/gitlab-test"
    assert event.needs_permission_check
    payload["object_attributes"]["note"] = "/aac reanalyse"
    assert parse("Note Hook", payload).reanalyse is True


def test_the_bots_own_notes_system_notes_and_other_noteables_are_ignored() -> None:
    payload = example("note.merge_request")
    payload["object_attributes"]["note"] = "/aac rerun"
    assert isinstance(parse("Note Hook", payload, bots={"root"}), Ignore)
    report = copy.deepcopy(payload)
    report["object_attributes"]["note"] = "<!-- aac:report:tests -->\n/aac rerun to try again"
    assert isinstance(parse("Note Hook", report), Ignore)
    system = copy.deepcopy(payload)
    system["object_attributes"]["system"] = True
    assert isinstance(parse("Note Hook", system), Ignore)
    edited = copy.deepcopy(payload)
    edited["object_attributes"]["action"] = "update"
    assert isinstance(parse("Note Hook", edited), Ignore)
    on_issue = copy.deepcopy(payload)
    on_issue["object_attributes"]["noteable_type"] = "Issue"
    del on_issue["merge_request"]
    assert isinstance(parse("Note Hook", on_issue), Ignore)
    assert isinstance(parse("Push Hook", {"object_kind": "push"}), Ignore)


def test_a_merge_request_from_another_project_is_a_fork() -> None:
    payload = example("merge_request.open")
    same = parse("Merge Request Hook", payload)
    assert isinstance(same, ChangeOpened)
    assert (same.from_fork, same.head_repository) == (False, "awesome_space/awesome_project")
    payload["object_attributes"]["source_project_id"] = 99
    payload["object_attributes"]["source"]["path_with_namespace"] = "forker/awesome_project"
    fork = parse("Merge Request Hook", payload)
    assert isinstance(fork, ChangeOpened)
    assert (fork.from_fork, fork.head_repository) == (True, "forker/awesome_project")
    del payload["object_attributes"]["source_project_id"]
    unknown = parse("Merge Request Hook", payload)
    assert isinstance(unknown, ChangeOpened)
    assert unknown.from_fork is None  # the core then treats it as a fork


def test_aac_approve_in_a_note_asks_to_release_a_forks_run() -> None:
    payload = example("note.merge_request")
    payload["object_attributes"]["note"] = "/aac approve"
    event = parse("Note Hook", payload)
    assert isinstance(event, RunApproved)
    assert (event.number, event.requested_by, event.scm_action) == (1, "root", "note")
    assert event.needs_permission_check


def test_a_merge_request_pipeline_says_whether_it_ran_a_forks_commit() -> None:
    payload = example("pipeline.success")
    same = parse("Pipeline Hook", payload)
    assert isinstance(same, PipelineFinished)
    assert same.from_fork is False
    payload["merge_request"]["source_project_id"] = 99
    fork = parse("Pipeline Hook", payload)
    assert isinstance(fork, PipelineFinished)
    assert fork.from_fork is True
