"""End to end through real HTTP, the real worker and the fake Azure DevOps (issue 11)."""

from __future__ import annotations

from pathlib import Path

from storage.models import Job, TestCycle, WebhookDelivery
from tests.bot.e2e.azure import (
    REPOSITORY,
    AzureBot,
    azure_bot,
    azure_server,
    comment,
    notification,
    pull_request,
)
from tests.bot.e2e.conftest import wait_for
from tests.bot.e2e.queries import count, cycles, jobs_done
from tests.bot.e2e.test_github_flow import FAILING_JUNIT
from tests.fakes.azure_devops import Fault, User
from tests.providers.azure_devops.conftest import BOT, SOMEONE

__all__ = ["azure_bot", "azure_server"]  # fixtures used by name below

SHA1 = "1" * 40
SHA2 = "2" * 40


async def test_pull_request_report_push_and_redelivery(azure_bot: AzureBot, tmp_path: Path) -> None:
    bot = azure_bot
    bot.azure.add_pull_request(REPOSITORY, 7, SHA1)
    created = pull_request("git.pullrequest.created", 7, SHA1)
    assert (await bot.deliver(created)).status_code == 202
    again = await bot.deliver(created)  # Azure retrying the same notification
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    await wait_for(lambda: len(bot.statuses()) == 1, what="the pending PR status")
    [pending] = bot.statuses()
    assert pending["state"] == "pending"
    assert pending["context"] == {"genre": "aac", "name": "tests"}
    assert pending["iterationId"] == 1

    code, output = await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
    assert code == 0, output
    assert bot.api_key not in output
    await wait_for(lambda: bot.statuses()[-1]["state"] == "failed", what="the final PR status")
    await wait_for(lambda: len(bot.threads()) == 1, what="the report thread")
    final = bot.statuses()[-1]
    assert final["iterationId"] == 1
    assert "/cycles/" in (final["targetUrl"] or "")
    [thread] = bot.threads()
    assert thread.status == "closed"  # never blocks an "all comments resolved" policy
    assert "<!-- aac:report:tests -->" in thread.comments[0].content
    assert "2 failed" in thread.comments[0].content

    # A push: a new iteration; its pending and final statuses bind to iteration 2, the same
    # thread's first comment is edited, and the first cycle is superseded.
    bot.azure.push(REPOSITORY, 7, SHA2)
    assert (await bot.deliver(pull_request("git.pullrequest.updated", 7, SHA2))).status_code == 202
    await wait_for(
        lambda: any(s["iterationId"] == 2 for s in bot.statuses()), what="iteration 2's status"
    )
    code, output = await bot.report(
        tmp_path, sha=SHA2, pr=7, junit=FAILING_JUNIT.replace(b"got 500", b"got 502"), build_id=502
    )
    assert code == 0, output
    await wait_for(
        lambda: bot.statuses()[-1]["iterationId"] == 2 and bot.statuses()[-1]["state"] == "failed",
        what="iteration 2's final status",
    )
    await wait_for(
        lambda: SHA2[:7] in bot.threads()[0].comments[0].content, what="the thread edited"
    )
    [edited] = bot.threads()
    assert edited.id == thread.id
    assert len(edited.comments) == 1
    old, new = await cycles(bot.runtime)
    assert [(c.sha, c.status, c.superseded_by) for c in (old, new)] == [
        (SHA1, "done", new.id),
        (SHA2, "done", None),
    ]
    assert old.host == new.host == bot.azure.url.split("/")[2]  # keyed by the org's host
    # An update that is not a push (a vote) at the same commit opens nothing new.
    vote = pull_request("git.pullrequest.updated", 7, SHA2)
    assert (await bot.deliver(vote)).status_code == 202
    await wait_for(lambda: jobs_done(bot.runtime), what="every job to finish")
    assert len(await cycles(bot.runtime)) == 2
    assert await count(bot.runtime, WebhookDelivery) == 3  # created (once), push, vote


async def test_completed_pull_request_cancels_what_is_pending(azure_bot: AzureBot) -> None:
    bot = azure_bot
    bot.azure.add_pull_request(REPOSITORY, 7, SHA1)
    await bot.deliver(pull_request("git.pullrequest.created", 7, SHA1))
    await wait_for(lambda: len(bot.statuses()) == 1, what="the pending status")
    completed = pull_request("git.pullrequest.updated", 7, SHA1, status="completed")
    assert (await bot.deliver(completed)).status_code == 202
    await wait_for(lambda: bot.statuses()[-1]["state"] == "error", what="the cancelled status")
    [cycle] = await cycles(bot.runtime)
    assert cycle.status == "cancelled"


async def test_wrong_or_missing_credentials_are_401_and_store_nothing(azure_bot: AzureBot) -> None:
    bot = azure_bot
    payload = pull_request("git.pullrequest.created", 7, SHA1)
    wrong = await bot.deliver(payload, password="not-the-password")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "credentials_invalid")
    missing = await bot.deliver(payload, password=None)
    assert (missing.status_code, missing.json()["error"]) == (401, "credentials_missing")
    unknown = await bot.http.post(
        f"{bot.url}/webhooks/azure/no-such-org",
        content=b"{}",
        headers={"Authorization": wrong.request.headers["Authorization"]},
    )
    assert unknown.status_code == 401
    for model in (WebhookDelivery, Job, TestCycle):
        assert await count(bot.runtime, model) == 0, model


async def test_the_subscription_test_button_is_answered_and_not_stored(azure_bot: AzureBot) -> None:
    bot = azure_bot
    test = pull_request("git.pullrequest.created", 7, SHA1)
    test["subscriptionId"] = "00000000-0000-0000-0000-000000000000"
    answer = await bot.deliver(test)
    assert (answer.status_code, answer.json()) == (200, {"status": "pong"})
    assert await count(bot.runtime, WebhookDelivery) == 0


async def test_throttled_status_is_published_after_the_reset(
    azure_bot: AzureBot, tmp_path: Path
) -> None:
    bot = azure_bot
    bot.azure.add_pull_request(REPOSITORY, 7, SHA1)
    bot.azure.inject(
        Fault("throttled", method="POST", operation="CreatePullRequestStatus", retry_after=1)
    )
    await bot.deliver(pull_request("git.pullrequest.created", 7, SHA1))
    await wait_for(lambda: len(bot.statuses()) == 1, timeout=30, what="the status after reset")
    throttled = [r for r in bot.azure.requests if r.status == 429]
    assert len(throttled) == 1
    code, output = await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
    assert code == 0, output
    await wait_for(lambda: len(bot.threads()) == 1, what="the thread")
    await wait_for(lambda: jobs_done(bot.runtime), what="every job done, none dead")
    assert len(bot.threads()) == 1


def _result(name: str, outcome: str, message: str | None = None) -> dict[str, object]:
    return {
        "automatedTestName": f"tests.test_api.{name}",
        "testCaseTitle": name,
        "outcome": outcome,
        "durationInMs": 120.0,
        "errorMessage": message,
    }


async def test_finished_run_with_published_results_needs_no_aac_report(
    azure_bot: AzureBot,
) -> None:
    bot = azure_bot
    bot.azure.add_pull_request(REPOSITORY, 7, SHA1)
    bot.azure.add_build(REPOSITORY, 812, source_version="f" * 40, pr=7, result="failed")
    bot.azure.add_test_run(
        "Fabrikam",
        812,
        "pytest",
        [
            _result("test_create", "Failed", "AssertionError: expected 201, got 500"),
            _result("test_update", "Failed", "AssertionError: expected 200, got 500"),
            _result("test_list", "Passed"),
        ],
    )
    run = notification("ms.vss-pipelines.run-state-changed-event")
    run["resource"]["run"]["id"] = 812
    run["resourceContainers"]["project"]["id"] = bot.azure.builds[("fabrikam", 812)]["project"][
        "id"
    ]
    assert (await bot.deliver(run)).status_code == 202
    await wait_for(
        lambda: bool(bot.statuses()) and bot.statuses()[-1]["state"] == "failed",
        what="the PR status from the published results",
    )
    await wait_for(lambda: len(bot.threads()) == 1, what="the thread")
    [cycle] = await cycles(bot.runtime)
    assert (cycle.trigger, cycle.pr, cycle.sha, cycle.pipeline_id) == (
        "workflow_run",
        7,
        SHA1,
        "812",
    )
    assert (cycle.total, cycle.failed) == (3, 2)
    # The same run's build.complete (both subscriptions exist) changes nothing.
    build = notification("build.complete", id=812, status="failed")
    build["resourceContainers"] = run["resourceContainers"]
    assert (await bot.deliver(build)).status_code == 202
    await wait_for(lambda: jobs_done(bot.runtime), what="every job to finish")
    assert len(await cycles(bot.runtime)) == 1
    assert len(bot.threads()) == 1


async def test_rerun_command_from_a_contributor_and_from_a_reader(
    azure_bot: AzureBot, tmp_path: Path
) -> None:
    bot = azure_bot
    reader = User("9e1c0d3b-0000-4000-8000-0000000000aa", "reader@acme.example", "Rea Der")
    bot.azure.pats["reader-pat-0123456789"] = reader  # known to the organisation, may not push
    bot.azure.add_pull_request(REPOSITORY, 7, SHA1)
    await bot.deliver(pull_request("git.pullrequest.created", 7, SHA1))
    await wait_for(lambda: len(bot.statuses()) == 1, what="the pending status")
    code, output = await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
    assert code == 0, output
    await wait_for(lambda: len(bot.statuses()) == 2, what="the final status")
    await wait_for(lambda: jobs_done(bot.runtime), what="the first report's jobs")

    # A reader's command is checked against the repository's ACL, not acted on, and a
    # reply thread tells the reader who may.
    asked = comment(7, SHA1, "/aac rerun", {**reader.ref(), "id": reader.id})
    assert (await bot.deliver(asked)).status_code == 202
    await wait_for(lambda: len(bot.threads()) == 2, what="the reply to the reader")
    await wait_for(lambda: jobs_done(bot.runtime), what="the reader's command handled")
    acl_reads = [r for r in bot.azure.requests if r.operation == "AccessControlLists"]
    assert len(acl_reads) == 1
    assert acl_reads[0].query["token"].startswith("repoV2/")
    assert len(bot.statuses()) == 2
    reply = bot.threads()[-1]
    assert reply.comments[0].content.startswith(f"@<{reader.id}> ")
    assert reply.status == "closed"
    # The reply comes back as the bot's own comment event: no command, nothing happens.
    echo = comment(7, SHA1, reply.comments[0].content, BOT.ref())
    assert (await bot.deliver(echo)).status_code == 202
    await wait_for(lambda: jobs_done(bot.runtime), what="the echo handled")
    assert len(bot.threads()) == 2

    # A contributor's command re-analyses the PR's latest cycle, which is published again.
    asked = comment(7, SHA1, "please\n/aac reanalyse", SOMEONE.ref())
    assert (await bot.deliver(asked)).status_code == 202
    await wait_for(lambda: len(bot.statuses()) == 3, what="the re-analysed cycle's status")
    assert bot.statuses()[-1]["state"] == "failed"
    await wait_for(lambda: jobs_done(bot.runtime), what="every job to finish")
    assert len(bot.threads()) == 2  # the report, edited in place, and the reply


async def test_rerun_command_on_a_failed_run_retries_its_failed_stage(azure_bot: AzureBot) -> None:
    bot = azure_bot
    bot.azure.add_pull_request(REPOSITORY, 7, SHA1)
    stages = {"Build": "succeeded", "Test": "failed"}
    bot.azure.add_build(
        REPOSITORY, 812, source_version="f" * 40, pr=7, result="failed", stages=stages
    )
    bot.azure.add_test_run("Fabrikam", 812, "lint", [_result("test_lint", "Passed")], stage="Build")
    first_attempt = [_result("test_create", "Failed", "boom"), _result("test_list", "Passed")]
    bot.azure.add_test_run("Fabrikam", 812, "pytest", first_attempt, stage="Test")
    run = notification("ms.vss-pipelines.run-state-changed-event")
    run["resource"]["run"]["id"] = 812
    project_id = bot.azure.builds[("fabrikam", 812)]["project"]["id"]
    run["resourceContainers"]["project"]["id"] = project_id
    assert (await bot.deliver(run)).status_code == 202
    await wait_for(lambda: len(bot.threads()) == 1, what="the report thread from the run")
    await wait_for(lambda: jobs_done(bot.runtime), what="the run's jobs")
    [cycle] = await cycles(bot.runtime)
    assert cycle.context_extra["rerun_pipeline_id"] == "812"  # where /aac rerun looks
    assert (cycle.total, cycle.failed) == (3, 1)

    asked = comment(7, SHA1, "/aac rerun", SOMEONE.ref())
    assert (await bot.deliver(asked)).status_code == 202
    await wait_for(
        lambda: bot.azure.stage_retries == [("Fabrikam", 812, "Test")], what="the stage retried"
    )
    await wait_for(lambda: jobs_done(bot.runtime), what="every job to finish")
    assert bot.azure.queued_builds == []
    assert bot.azure.stage_retries == [("Fabrikam", 812, "Test")]

    # The retried stage's job publishes a passing run (its attempt 2) and the build completes
    # again under its id: the second cycle counts each test once, with its latest outcome.
    second_attempt = [_result("test_create", "Passed"), _result("test_list", "Passed")]
    bot.azure.add_test_run("Fabrikam", 812, "pytest", second_attempt, stage="Test")
    bot.azure.finish_stage("Fabrikam", 812, "Test", "succeeded")
    again = notification("ms.vss-pipelines.run-state-changed-event")
    again["resource"]["run"]["id"] = 812
    again["resourceContainers"]["project"]["id"] = project_id
    assert (await bot.deliver(again)).status_code == 202
    await wait_for(lambda: _published_twice(bot), what="the retried build's cycle published")
    first, second = sorted(await cycles(bot.runtime), key=lambda c: c.run_attempt)
    assert (first.run_attempt, second.run_attempt) == (1, 2)
    assert first.superseded_by == second.id
    assert (second.status, second.outcome, second.pipeline_id) == ("done", "success", "812")
    assert (second.total, second.passed, second.failed) == (3, 3, 0)
    assert bot.statuses()[-1]["state"] == "succeeded"
    assert len(bot.threads()) == 1  # the report thread, edited in place


async def _published_twice(bot: AzureBot) -> bool:
    done = [c for c in await cycles(bot.runtime) if c.status == "done"]
    return len(done) == 2 and await jobs_done(bot.runtime)
