"""End to end through real HTTP, the real worker and the fake GitHub (issue: GitHub App)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import zipfile
from pathlib import Path

from sqlalchemy import func, select

from bot.handlers.context import HandlerContext
from bot.publish import PublishCycle
from providers.factory import ProviderShared
from providers.github.provider import GithubShared
from storage.db import create_engine, session_factory
from storage.models import Job, TestCycle, WebhookDelivery
from storage.write_slots import WriteSlots
from tests.bot.e2e.conftest import (
    REPOSITORY,
    RunningBot,
    install,
    official_example,
    pull_request,
    retarget,
    slow_model,
    wait_for,
)
from tests.fakes.github import Fault
from tests.github_constants import BOT_LOGIN

SHA1 = "1" * 40
SHA2 = "2" * 40
FAILING_JUNIT = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testsuite name="pytest" tests="3" failures="2">
    <testcase classname="tests.test_api" name="test_create" file="tests/test_api.py" line="10"
              time="0.2">
      <failure message="AssertionError: expected 201, got 500">Traceback (most recent call last):
  File "tests/test_api.py", line 14, in test_create
    assert response.status_code == 201
AssertionError: expected 201, got 500</failure>
    </testcase>
    <testcase classname="tests.test_api" name="test_update" file="tests/test_api.py" line="20"
              time="0.1">
      <failure message="AssertionError: expected 200, got 500">Traceback (most recent call last):
  File "tests/test_api.py", line 24, in test_update
    assert response.status_code == 200
AssertionError: expected 200, got 500</failure>
    </testcase>
    <testcase classname="tests.test_api" name="test_list" time="0.1"/>
  </testsuite>
</testsuites>
"""


def _runs(bot: RunningBot, sha: str) -> list:  # type: ignore[type-arg]
    return [r for r in bot.github.check_runs.values() if r.head_sha == sha]


def _our_comments(bot: RunningBot) -> list:  # type: ignore[type-arg]
    return [c for c in bot.github.comments.values() if c.user == BOT_LOGIN]


async def _first_report_commented(bot: RunningBot, tmp_path: Path) -> None:
    """PR 7 opened at SHA1, failing results reported, and its one comment posted."""
    await install(bot)
    await bot.deliver("pull_request", pull_request("opened", 7, SHA1))
    await wait_for(lambda: len(_runs(bot, SHA1)) == 1, what="queued run")
    await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
    await wait_for(lambda: len(_our_comments(bot)) == 1, what="the first comment")


async def _cycles(bot: RunningBot) -> list[TestCycle]:
    async with bot.runtime.sessions() as session:
        return list(
            (await session.execute(select(TestCycle).order_by(TestCycle.created_at))).scalars()
        )


async def test_pull_request_report_and_push(bot: RunningBot, tmp_path: Path) -> None:
    await install(bot)
    opened = pull_request("opened", 7, SHA1)
    first = await bot.deliver("pull_request", opened, delivery="d-opened")
    assert first.status_code == 202
    # Redelivery of the same delivery id: acknowledged, nothing new.
    again = await bot.deliver("pull_request", opened, delivery="d-opened")
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    await wait_for(lambda: len(_runs(bot, SHA1)) == 1, what="the queued check run")
    [queued] = _runs(bot, SHA1)
    assert queued.status == "queued"
    assert queued.name == "aac / tests"

    code, output = await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
    assert code == 0, output
    assert bot.api_key not in output
    await wait_for(lambda: _runs(bot, SHA1)[0].status == "completed", what="completion")
    await wait_for(lambda: len(_our_comments(bot)) == 1, what="the PR comment")
    [run] = _runs(bot, SHA1)
    assert run.conclusion == "failure"
    assert run.id == queued.id  # the same check run went queued -> completed
    # No model configured: the report was ready at once, so no "in progress" write before it.
    assert run.states == ["queued", "completed"]
    assert {a["path"] for a in run.annotations} == {"tests/test_api.py"}
    assert len(run.annotations) == 2
    assert run.details_url
    assert f"/cycles/{run.external_id}?exp=" in run.details_url
    [comment] = _our_comments(bot)
    assert "<!-- aac:report:tests -->" in comment.body
    assert "2 failed" in comment.body
    first_comment_id = comment.id

    # A new push: a new cycle and check run on the new sha, the same comment edited.
    before_push = len(bot.github.requests)
    assert (
        await bot.deliver("pull_request", pull_request("synchronize", 7, SHA2))
    ).status_code == 202
    await wait_for(lambda: len(_runs(bot, SHA2)) == 1, what="the new sha's check run")
    code, output = await bot.report(
        tmp_path, sha=SHA2, pr=7, junit=FAILING_JUNIT.replace(b"got 500", b"got 502"), run_id=1002
    )
    assert code == 0, output
    await wait_for(lambda: _runs(bot, SHA2)[0].status == "completed", what="the new check run")

    def comment_updated() -> bool:
        comments = _our_comments(bot)
        return len(comments) == 1 and SHA2[:7] in comments[0].body

    await wait_for(comment_updated, what="the comment to be edited in place")
    assert _our_comments(bot)[0].id == first_comment_id
    # The new cycle edited the comment the last one stored: no listing of the PR's comments.
    since_push = bot.github.requests[before_push:]
    assert _comment_listings(since_push) == []
    assert [r.path for r in since_push if r.path.endswith(f"/comments/{first_comment_id}")] == [
        f"/repos/{REPOSITORY}/issues/comments/{first_comment_id}"
    ]
    # The old cycle is superseded but keeps its status, results and check run on its commit.
    cycles = await _cycles(bot)
    old, new = cycles
    assert [(c.sha, c.status, c.superseded_by) for c in cycles] == [
        (SHA1, "done", new.id),
        (SHA2, "done", None),
    ]
    [old_run] = _runs(bot, SHA1)
    assert (old_run.conclusion, old_run.states) == ("failure", ["queued", "completed"])
    headers = {"Authorization": f"Bearer {bot.api_key}"}
    read = (await bot.http.get(f"{bot.url}/api/v1/cycles/{old.id}", headers=headers)).json()
    assert (read["status"], read["superseded_by"]) == ("done", new.id)
    assert read["superseded_by_url"] == f"{bot.url}/api/v1/cycles/{new.id}"
    assert read["totals"]["failed"] == 2
    page = await bot.http.get(f"{bot.url}/cycles/{old.id}", headers=headers)
    assert "Superseded</b> by cycle" in page.text
    assert f"/cycles/{new.id}?exp=" in page.text
    assert "test_create" in page.text  # its own failures are still reported

    # "Re-analyse" on the old commit's check run updates that run, not the PR's comment,
    # which reports the newer commit.
    button = retarget(official_example("check_run.requested_action"))
    button["check_run"]["external_id"] = old.id
    button["check_run"]["head_sha"] = SHA1
    button["requested_action"] = {"identifier": "aac-reanalyse"}
    assert (await bot.deliver("check_run", button)).status_code == 202
    await wait_for(lambda: len(old_run.states) == 3, what="the old run to be published again")
    assert old_run.states == ["queued", "completed", "completed"]

    async def jobs_done() -> bool:
        async with bot.runtime.sessions() as session:
            return set((await session.execute(select(Job.status))).scalars()) == {"done"}

    await wait_for(jobs_done, what="every job to finish")
    [comment] = _our_comments(bot)
    assert SHA2[:7] in comment.body
    assert SHA1[:7] not in comment.body
    async with bot.runtime.sessions() as session:
        deliveries = (
            await session.execute(select(func.count()).select_from(WebhookDelivery))
        ).scalar_one()
    assert deliveries == 4  # installation, opened (once), synchronize, the button


def _comment_listings(requests: list) -> list:  # type: ignore[type-arg]
    return [r for r in requests if r.method == "GET" and r.path.endswith("/issues/7/comments")]


async def test_a_deleted_comment_is_found_by_marker_or_created_again(
    bot: RunningBot, tmp_path: Path
) -> None:
    await _first_report_commented(bot, tmp_path)
    [first] = _our_comments(bot)

    # Someone deletes the comment; the next push's cycle finds the stored id gone (404), looks
    # for our marker among the PR's comments, finds none and creates the comment again.
    del bot.github.comments[first.id]
    before = len(bot.github.requests)
    await bot.deliver("pull_request", pull_request("synchronize", 7, SHA2))
    await wait_for(lambda: len(_runs(bot, SHA2)) == 1, what="SHA2's queued run")
    await bot.report(tmp_path, sha=SHA2, pr=7, junit=FAILING_JUNIT, run_id=1002)
    await wait_for(lambda: len(_our_comments(bot)) == 1, what="the comment, created again")
    [second] = _our_comments(bot)
    assert second.id != first.id
    assert SHA2[:7] in second.body
    requests = bot.github.requests[before:]
    assert [r.status for r in requests if r.path.endswith(f"/comments/{first.id}")] == [404]
    assert len(_comment_listings(requests)) == 1

    # Deleted again, while another comment of ours carries the marker: that one is edited.
    del bot.github.comments[second.id]
    marked = bot.github.add_comment(REPOSITORY, 7, BOT_LOGIN, "<!-- aac:report:tests -->\nold")
    sha3 = "3" * 40
    before = len(bot.github.requests)
    await bot.deliver("pull_request", pull_request("synchronize", 7, sha3))
    await wait_for(lambda: len(_runs(bot, sha3)) == 1, what="SHA3's queued run")
    await bot.report(tmp_path, sha=sha3, pr=7, junit=FAILING_JUNIT, run_id=1003)
    await wait_for(
        lambda: sha3[:7] in bot.github.comments[marked].body, what="the marked comment edited"
    )
    assert [c.id for c in _our_comments(bot)] == [marked]
    assert len(_comment_listings(bot.github.requests[before:])) == 1

    # The fake shows the edit before the bot has stored its result: wait for the stored id.
    async def stored_comment_id() -> bool:
        published = (await _cycles(bot))[-1].published or {}
        return "comment" in published

    await wait_for(stored_comment_id, what="the publish result to be stored")
    cycles = await _cycles(bot)
    assert cycles[-1].published["comment"]["ids"]["comment_id"] == str(marked)


async def test_check_run_is_in_progress_while_the_model_works(
    bot: RunningBot, tmp_path: Path
) -> None:
    with slow_model(bot) as llm:
        await install(bot)
        await bot.deliver("pull_request", pull_request("opened", 7, SHA1))
        await wait_for(lambda: len(_runs(bot, SHA1)) == 1, what="queued run")
        reporting = asyncio.create_task(bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT))
        await wait_for(lambda: _runs(bot, SHA1)[0].status == "in_progress", what="in progress")
        [run] = _runs(bot, SHA1)
        assert run.output["title"] == "Analysing 2 failures…"
        assert "3 tests" in run.output["summary"]
        await wait_for(lambda: len(llm.requests) == 1, what="the model to be asked")
        assert _our_comments(bot) == []
        assert run.status == "in_progress"  # until the model answers
        llm.release()
        code, output = await reporting
        assert code == 0, output
        await wait_for(lambda: run.status == "completed", what="completion")
        await wait_for(lambda: len(_our_comments(bot)) == 1, what="the comment")
    assert run.states == ["queued", "in_progress", "completed"]
    assert run.conclusion == "failure"
    assert "root causes found" in _our_comments(bot)[0].body


async def test_pushing_before_results_supersedes_the_pending_cycle(bot: RunningBot) -> None:
    await install(bot)
    await bot.deliver("pull_request", pull_request("opened", 9, SHA1))
    await wait_for(lambda: len(_runs(bot, SHA1)) == 1, what="queued run")
    await bot.deliver("pull_request", pull_request("synchronize", 9, SHA2))
    await wait_for(lambda: len(_runs(bot, SHA2)) == 1, what="new queued run")
    await wait_for(
        lambda: _runs(bot, SHA1)[0].conclusion == "neutral", what="old run marked superseded"
    )
    cycles = await _cycles(bot)
    assert [(c.sha, c.status) for c in cycles] == [(SHA1, "superseded"), (SHA2, "collecting")]
    assert cycles[0].superseded_by == cycles[1].id


async def test_forged_signature_is_401_and_stores_nothing(bot: RunningBot) -> None:
    payload = pull_request("opened", 7, SHA1)
    forged = await bot.deliver("pull_request", payload, secret="not-the-secret")
    assert forged.status_code == 401
    assert forged.json()["error"] == "signature_invalid"
    unsigned = await bot.http.post(
        f"{bot.url}/webhooks/github",
        content=b"{}",
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "x"},
    )
    assert unsigned.status_code == 401
    async with bot.runtime.sessions() as session:
        for model in (WebhookDelivery, Job, TestCycle):
            count = (await session.execute(select(func.count()).select_from(model))).scalar_one()
            assert count == 0, model


async def test_ping_and_unknown_events_answer_2xx(bot: RunningBot) -> None:
    assert (await bot.deliver("ping", official_example("ping"))).status_code == 200
    labeled = retarget(official_example("pull_request.labeled"))
    assert (await bot.deliver("pull_request", labeled)).status_code == 202
    assert (
        await bot.deliver("star", {"action": "created", "sender": {"login": "x"}})
    ).status_code == 202


async def test_secondary_rate_limit_while_publishing(bot: RunningBot, tmp_path: Path) -> None:
    await install(bot)
    await bot.deliver("pull_request", pull_request("opened", 7, SHA1))
    await wait_for(lambda: len(_runs(bot, SHA1)) == 1, what="queued run")
    bot.github.inject(
        Fault("secondary_rate_limit", method="POST", path=r".*/issues/\d+/comments", retry_after=1)
    )
    code, output = await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
    assert code == 0, output
    await wait_for(lambda: len(_our_comments(bot)) == 1, timeout=30, what="comment after reset")
    limited = [r for r in bot.github.requests if r.status == 403 and r.path.endswith("/comments")]
    assert len(limited) == 1
    [run] = _runs(bot, SHA1)
    assert run.status == "completed"
    assert len(run.annotations) == 2  # nothing sent twice

    async def publish_jobs_done() -> bool:
        async with bot.runtime.sessions() as session:
            query = select(Job.status).where(Job.kind == "publish_cycle")
            return set((await session.execute(query)).scalars()) == {"done"}

    await wait_for(publish_jobs_done, what="every publish job to finish, none dead")


def _artifact_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("unit/TEST-api.xml", FAILING_JUNIT)
        archive.writestr("coverage.json", b"{}")
    return buffer.getvalue()


async def test_workflow_run_with_artifact_publishes_without_aac_report(bot: RunningBot) -> None:
    await install(bot)
    run_id = 555
    bot.github.add_artifact(REPOSITORY, run_id, "test-results", _artifact_zip())
    bot.github.add_artifact(REPOSITORY, run_id, "screenshots", b"not a zip")
    payload = retarget(official_example("workflow_run.completed"))
    payload["workflow_run"].update(
        {
            "id": run_id,
            "name": "CI",
            "head_sha": SHA1,
            "head_branch": "feature",
            "conclusion": "failure",
            "run_attempt": 1,
            "html_url": f"https://github.com/{REPOSITORY}/actions/runs/{run_id}",
            "pull_requests": [{"number": 11, "base": {"ref": "main"}, "head": {"sha": SHA1}}],
        }
    )
    assert (await bot.deliver("workflow_run", payload)).status_code == 202
    await wait_for(
        lambda: bool(_runs(bot, SHA1)) and _runs(bot, SHA1)[0].status == "completed",
        what="the check run from the artifact",
    )
    await wait_for(lambda: len(_our_comments(bot)) == 1, what="the comment")
    [cycle] = await _cycles(bot)
    assert cycle.trigger == "workflow_run"
    assert (cycle.total, cycle.failed, cycle.pr) == (3, 2, 11)
    assert cycle.pipeline_id == str(run_id)


async def test_check_run_buttons_and_chat_command(bot: RunningBot, tmp_path: Path) -> None:
    await install(bot)
    await bot.deliver("pull_request", pull_request("opened", 7, SHA1))
    await wait_for(lambda: len(_runs(bot, SHA1)) == 1, what="queued run")
    await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
    await wait_for(lambda: _runs(bot, SHA1)[0].status == "completed", what="completion")
    [cycle] = await _cycles(bot)

    async def analyse_jobs() -> int:
        async with bot.runtime.sessions() as session:
            query = select(func.count()).select_from(Job).where(Job.kind == "analyse_cycle")
            return int((await session.execute(query)).scalar_one())

    assert await analyse_jobs() == 1
    button = retarget(official_example("check_run.requested_action"))
    button["check_run"]["external_id"] = cycle.id
    button["check_run"]["head_sha"] = SHA1
    button["requested_action"] = {"identifier": "aac-reanalyse"}
    assert (await bot.deliver("check_run", button)).status_code == 202

    async def reanalysed() -> bool:
        return await analyse_jobs() == 2

    await wait_for(reanalysed, what="a re-analysis from the button")

    # /aac rerun from someone without write access is ignored politely.
    comment = retarget(official_example("pull_request.opened"), sender="drive-by")
    comment.update(
        {
            "action": "created",
            "issue": {"number": 7, "pull_request": {"url": "x"}},
            "comment": {"body": "/aac reanalyse please", "user": {"login": "drive-by"}},
        }
    )
    assert (await bot.deliver("issue_comment", comment)).status_code == 202
    bot.github.set_permission(REPOSITORY, "maintainer", "write")
    trusted = {**comment, "comment": {"body": "/aac reanalyse", "user": {"login": "maintainer"}}}
    trusted["sender"] = {"login": "maintainer", "type": "User"}
    assert (await bot.deliver("issue_comment", trusted)).status_code == 202

    async def three() -> bool:
        return await analyse_jobs() == 3

    await wait_for(three, what="a re-analysis from the maintainer's command")
    permission_checks = [r for r in bot.github.requests if r.path.endswith("/permission")]
    assert {r.path.rsplit("/", 2)[-2] for r in permission_checks} == {"drive-by", "maintainer"}


async def test_events_caused_by_the_bot_are_ignored(bot: RunningBot) -> None:
    await install(bot)
    payload = pull_request("opened", 7, SHA1)
    payload["sender"] = {"login": BOT_LOGIN, "type": "Bot"}
    assert (await bot.deliver("pull_request", payload)).status_code == 202

    async def processed() -> bool:
        async with bot.runtime.sessions() as session:
            statuses = (await session.execute(select(Job.status))).scalars().all()
            return bool(statuses) and set(statuses) == {"done"}

    await wait_for(processed, what="the delivery to be processed")
    assert await _cycles(bot) == []
    assert bot.github.check_runs == {}


async def test_two_processes_publishing_one_pr_at_once_make_one_comment(
    bot: RunningBot, tmp_path: Path
) -> None:
    """Two publishers (own provider state and connection pools, as two worker processes have)
    sending the same cycle when no comment is known yet: one creates it, the other edits it."""
    await _first_report_commented(bot, tmp_path)
    # Forget the comment everywhere, as before the first publish.
    [first] = _our_comments(bot)
    del bot.github.comments[first.id]
    [cycle] = await _cycles(bot)
    async with bot.runtime.sessions.begin() as session:
        stored = await session.get(TestCycle, cycle.id)
        assert stored is not None
        stored.published = {k: v for k, v in (stored.published or {}).items() if k != "comment"}

    # Comment listings answer late, so both publishers look before either has created one.
    bot.github.inject(
        Fault("slow", method="GET", path=r".*/issues/7/comments", times=2, delay=1.0, late=True)
    )
    publishers: list[tuple[PublishCycle, ProviderShared]] = []
    engines = [create_engine(bot.runtime.settings.database_url) for _ in range(2)]
    for engine in engines:
        runtime = dataclasses.replace(bot.runtime, engine=engine, sessions=session_factory(engine))
        shared = ProviderShared(
            github=GithubShared(pacing_seconds=0.01, write_slots=WriteSlots(engine))
        )
        publishers.append((PublishCycle(HandlerContext(runtime, shared)), shared))
    try:
        await asyncio.gather(*(publisher.publish(cycle.id) for publisher, _ in publishers))
    finally:
        for _, shared in publishers:
            await shared.close()
        for engine in engines:
            await engine.dispose()
    comments = _our_comments(bot)
    assert len(comments) == 1
    [cycle] = await _cycles(bot)
    assert cycle.published["comment"]["ids"]["comment_id"] == str(comments[0].id)
