"""End to end through real HTTP, the real worker and the fake GitLab (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from storage.models import Job, TestCycle, WebhookDelivery
from tests.bot.e2e.conftest import wait_for
from tests.bot.e2e.gitlab import (
    DEVELOPER_USER,
    GUEST_USER,
    PROJECT,
    GitlabBot,
    gitlab_bot,
    gitlab_server,
)
from tests.bot.e2e.queries import count, count_jobs, cycles, jobs_done
from tests.bot.e2e.test_github_flow import FAILING_JUNIT
from tests.fakes.gitlab import Fault

__all__ = ["gitlab_bot", "gitlab_server"]  # fixtures used by name below

SHA1 = "1" * 40
SHA2 = "2" * 40
MR = 5
TEST_REPORT = Path(__file__).parents[2] / "fixtures" / "gitlab" / "test_report.json"


def _states(bot: GitlabBot, sha: str) -> list[str]:
    return [s.status for s in bot.statuses(sha)]


async def _opened_and_reported(bot: GitlabBot, tmp_path: Path) -> int:
    """MR !5 opened at SHA1 with its pipeline, failing results reported: the pipeline id."""
    bot.gitlab.add_merge_request(PROJECT, MR)
    pipeline = bot.gitlab.add_pipeline(PROJECT, SHA1, ref=f"refs/merge-requests/{MR}/head")
    assert (await bot.deliver("Merge Request Hook", bot.merge_request("open", MR, SHA1))).is_success
    await wait_for(lambda: _states(bot, SHA1) == ["pending"], what="the pending status")
    code, output = await bot.report(
        tmp_path, sha=SHA1, mr=MR, junit=FAILING_JUNIT, pipeline_id=pipeline
    )
    assert code == 0, output
    await wait_for(lambda: _states(bot, SHA1) == ["failed"], what="the final status")
    await wait_for(lambda: len(bot.notes()) == 1, what="the MR note")
    await wait_for(lambda: jobs_done(bot.runtime), what="the first report's jobs")
    return pipeline


async def _failed_pipeline_delivered(bot: GitlabBot) -> tuple[int, dict[str, Any]]:
    """MR !5's pipeline at SHA1 failed with a test report, and its Pipeline Hook delivered:
    the pipeline id and the report."""
    bot.gitlab.add_merge_request(PROJECT, MR)
    report = json.loads(TEST_REPORT.read_text())
    pipeline = bot.gitlab.add_pipeline(
        PROJECT, SHA1, ref=f"refs/merge-requests/{MR}/head", test_report=report
    )
    assert (await bot.deliver("Pipeline Hook", bot.pipeline(pipeline, SHA1, MR))).is_success
    return pipeline, report


async def test_merge_request_report_push_and_redelivery(
    gitlab_bot: GitlabBot, tmp_path: Path
) -> None:
    bot = gitlab_bot
    bot.gitlab.add_merge_request(PROJECT, MR)
    pipeline = bot.gitlab.add_pipeline(PROJECT, SHA1, ref=f"refs/merge-requests/{MR}/head")
    opened = bot.merge_request("open", MR, SHA1)
    first = await bot.deliver("Merge Request Hook", opened, delivery="d-opened")
    assert first.status_code == 202
    # GitLab retrying the same delivery (the same Idempotency-Key): acknowledged, nothing new.
    again = await bot.deliver("Merge Request Hook", opened, delivery="d-opened")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    await wait_for(lambda: len(bot.statuses(SHA1)) == 1, what="the pending status")
    [pending] = bot.statuses(SHA1)
    assert (pending.status, pending.pipeline_id) == ("pending", pipeline)
    assert bot.gitlab.external_pipelines() == []  # it joined the MR's pipeline

    code, output = await bot.report(
        tmp_path, sha=SHA1, mr=MR, junit=FAILING_JUNIT, pipeline_id=pipeline
    )
    assert code == 0, output
    assert bot.api_key not in output
    await wait_for(lambda: _states(bot, SHA1) == ["failed"], what="the final status")
    await wait_for(lambda: len(bot.notes()) == 1, what="the MR note")
    [final] = bot.statuses(SHA1)
    assert final.id == pending.id  # the same status went pending -> failed
    assert final.history == ["pending", "failed"]
    assert final.pipeline_id == pipeline
    assert "/cycles/" in (final.target_url or "")
    assert len(final.description or "") <= 255
    [note] = bot.notes()
    assert "<!-- aac:report:tests -->" in note.body
    assert "2 failed" in note.body

    # A push: GitLab's update with oldrev. A new status on the new sha in its pipeline, the
    # same note edited, the first cycle superseded.
    pipeline2 = bot.gitlab.add_pipeline(PROJECT, SHA2, ref=f"refs/merge-requests/{MR}/head")
    pushed = bot.merge_request("update", MR, SHA2, oldrev=SHA1)
    assert (await bot.deliver("Merge Request Hook", pushed)).status_code == 202
    await wait_for(lambda: _states(bot, SHA2) == ["pending"], what="the new sha's status")
    code, output = await bot.report(
        tmp_path,
        sha=SHA2,
        mr=MR,
        junit=FAILING_JUNIT.replace(b"got 500", b"got 502"),
        pipeline_id=pipeline2,
    )
    assert code == 0, output
    await wait_for(lambda: _states(bot, SHA2) == ["failed"], what="the new sha's final status")
    await wait_for(lambda: SHA2[:7] in bot.notes()[0].body, what="the note edited in place")
    [edited] = bot.notes()
    assert edited.id == note.id
    assert bot.statuses(SHA2)[0].pipeline_id == pipeline2
    assert _states(bot, SHA1) == ["failed"]  # the old commit keeps its status
    old, new = await cycles(bot.runtime)
    assert [(c.sha, c.status, c.superseded_by) for c in (old, new)] == [
        (SHA1, "done", new.id),
        (SHA2, "done", None),
    ]
    assert old.source == new.source == "gitlab"
    assert old.host == new.host == bot.gitlab.url.split("/")[2]  # keyed by the org's host
    # An update without new commits (a title edit) opens nothing new.
    retitled = bot.merge_request("update", MR, SHA2)
    assert (await bot.deliver("Merge Request Hook", retitled)).status_code == 202
    await wait_for(lambda: jobs_done(bot.runtime), what="every job to finish")
    assert len(await cycles(bot.runtime)) == 2
    assert len(bot.notes()) == 1
    assert await count(bot.runtime, WebhookDelivery) == 3  # opened (once), push, title edit


async def test_wrong_or_missing_token_is_401_and_stores_nothing(gitlab_bot: GitlabBot) -> None:
    bot = gitlab_bot
    payload = bot.merge_request("open", MR, SHA1)
    wrong = await bot.deliver("Merge Request Hook", payload, token="not-the-secret")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "token_invalid")
    assert "not-the-secret" not in wrong.text
    missing = await bot.deliver("Merge Request Hook", payload, token=None)
    assert (missing.status_code, missing.json()["error"]) == (401, "token_missing")
    for model in (WebhookDelivery, Job, TestCycle):
        assert await count(bot.runtime, model) == 0, model
    assert bot.gitlab.writes() == []


async def test_rate_limited_status_is_published_after_the_reset(
    gitlab_bot: GitlabBot, tmp_path: Path
) -> None:
    bot = gitlab_bot
    bot.gitlab.inject(Fault("rate_limit", method="POST", path=r".*/statuses/.*", retry_after=1))
    await _opened_and_reported(bot, tmp_path)
    limited = [r for r in bot.gitlab.requests if r.status == 429]
    assert len(limited) == 1
    # Nothing sent twice: one status (pending -> failed) and one note.
    [status] = bot.statuses(SHA1)
    assert status.history == ["pending", "failed"]
    assert len(bot.notes()) == 1
    async with bot.runtime.sessions() as session:
        dead = (await session.execute(select(Job).where(Job.status == "dead"))).scalars().all()
    assert dead == []


async def test_finished_pipeline_with_a_test_report_needs_no_aac_report(
    gitlab_bot: GitlabBot,
) -> None:
    bot = gitlab_bot
    pipeline, report = await _failed_pipeline_delivered(bot)
    await wait_for(
        lambda: bool(_states(bot, SHA1)) and _states(bot, SHA1)[-1] == "failed",
        what="the status from the pipeline's test report",
    )
    await wait_for(lambda: len(bot.notes()) == 1, what="the MR note")
    [status] = bot.statuses(SHA1)
    assert status.pipeline_id == pipeline  # attached to that pipeline, no external one
    assert bot.gitlab.external_pipelines() == []
    [cycle] = await cycles(bot.runtime)
    assert (cycle.source, cycle.pr, cycle.sha, cycle.pipeline_id) == (
        "gitlab",
        MR,
        SHA1,
        str(pipeline),
    )
    assert (cycle.total, cycle.failed) == (report["total_count"], report["failed_count"])
    # The same delivery again (GitLab's retry): nothing twice.
    again = bot.pipeline(pipeline, SHA1, MR)
    await wait_for(lambda: jobs_done(bot.runtime), what="every job to finish")
    replay = await bot.deliver("Pipeline Hook", again, delivery="p-1")
    assert replay.status_code == 202
    assert (await bot.deliver("Pipeline Hook", again, delivery="p-1")).status_code == 200
    await wait_for(lambda: jobs_done(bot.runtime), what="the replay handled")
    assert len(await cycles(bot.runtime)) == 1
    assert len(bot.notes()) == 1


async def test_rerun_note_from_a_developer_acts_and_a_guest_is_told_who_may(
    gitlab_bot: GitlabBot, tmp_path: Path
) -> None:
    bot = gitlab_bot
    await _opened_and_reported(bot, tmp_path)
    [report_note] = bot.notes()

    # A Guest's command: not acted on; a short reply on the MR says who may.
    asked = bot.note(MR, "/aac rerun", author=GUEST_USER)
    assert (await bot.deliver("Note Hook", asked)).status_code == 202
    await wait_for(lambda: len(bot.notes()) == 2, what="the reply to the guest")
    reply = bot.notes()[-1]
    assert f"@{GUEST_USER}" in reply.body
    assert "Developer" in reply.body
    await wait_for(lambda: jobs_done(bot.runtime), what="the guest's command handled")
    assert _states(bot, SHA1) == ["failed"]
    [cycle] = await cycles(bot.runtime)
    assert cycle.status == "done"
    # The reply comes back as a Note Hook by the bot: it is no command and nothing happens.
    echo = bot.note(MR, reply.body, author=reply.author)
    assert (await bot.deliver("Note Hook", echo)).status_code == 202
    await wait_for(lambda: jobs_done(bot.runtime), what="the echo handled")
    assert len(bot.notes()) == 2

    # A Developer's command re-analyses the MR's latest cycle, which is published again.
    before = len(bot.gitlab.writes())
    asked = bot.note(MR, "looks flaky\n/aac rerun", author=DEVELOPER_USER)
    assert (await bot.deliver("Note Hook", asked)).status_code == 202

    def republished() -> bool:
        return any(
            r.path.endswith(f"/notes/{report_note.id}") for r in bot.gitlab.writes()[before:]
        )

    await wait_for(republished, what="the report note written again")
    await wait_for(lambda: jobs_done(bot.runtime), what="every job to finish")
    assert len(bot.notes()) == 2
    assert _states(bot, SHA1) == ["failed"]
    assert await count_jobs(bot.runtime, "analyse_cycle") == 2


async def test_a_push_before_results_supersedes_and_closing_cancels(gitlab_bot: GitlabBot) -> None:
    bot = gitlab_bot
    bot.gitlab.add_merge_request(PROJECT, MR)
    for sha in (SHA1, SHA2):
        bot.gitlab.add_pipeline(PROJECT, sha, ref=f"refs/merge-requests/{MR}/head")
    await bot.deliver("Merge Request Hook", bot.merge_request("open", MR, SHA1))
    await wait_for(lambda: _states(bot, SHA1) == ["pending"], what="the pending status")
    pushed = bot.merge_request("update", MR, SHA2, oldrev=SHA1)
    assert (await bot.deliver("Merge Request Hook", pushed)).status_code == 202
    await wait_for(lambda: _states(bot, SHA2) == ["pending"], what="the new sha's status")
    # Superseded is "neutral", which GitLab's states can only say as success (as GitHub's
    # commit statuses do); its description says why.
    await wait_for(lambda: _states(bot, SHA1) == ["success"], what="the old status ended")
    assert bot.statuses(SHA1)[0].description == "Superseded by a newer commit"
    old, new = await cycles(bot.runtime)
    assert [(c.sha, c.status) for c in (old, new)] == [(SHA1, "superseded"), (SHA2, "collecting")]
    assert old.superseded_by == new.id

    closed = bot.merge_request("close", MR, SHA2)
    assert (await bot.deliver("Merge Request Hook", closed)).status_code == 202
    await wait_for(lambda: _states(bot, SHA2) == ["canceled"], what="the cancelled status")
    await wait_for(lambda: jobs_done(bot.runtime), what="every job to finish")
    assert [c.status for c in await cycles(bot.runtime)] == ["superseded", "cancelled"]
    assert bot.notes() == []  # nothing was reported, so no note


async def test_rerun_note_on_a_failed_pipeline_retries_it(gitlab_bot: GitlabBot) -> None:
    bot = gitlab_bot
    pipeline, _report = await _failed_pipeline_delivered(bot)
    await wait_for(lambda: len(bot.notes()) == 1, what="the MR note from the pipeline")
    await wait_for(lambda: jobs_done(bot.runtime), what="the pipeline's jobs")
    [cycle] = await cycles(bot.runtime)
    assert cycle.context_extra["rerun_pipeline_id"] == str(pipeline)  # where /aac rerun looks

    asked = bot.note(MR, "flaky?\n/aac rerun", author=DEVELOPER_USER)
    assert (await bot.deliver("Note Hook", asked)).status_code == 202
    await wait_for(lambda: bot.gitlab.pipeline_retries == [pipeline], what="the pipeline retried")
    await wait_for(lambda: jobs_done(bot.runtime), what="every job to finish")
    assert await count_jobs(bot.runtime, "analyse_cycle") == 1  # re-run, not re-analysed
    assert bot.gitlab.pipeline_retries == [pipeline]

    # The retried pipeline passes and GitLab sends its hook again, with the same pipeline id:
    # the results of the re-run are a new attempt, not taken for a redelivery.
    report = _all_passing(_report)
    bot.gitlab.pipelines[pipeline].test_report = report
    assert (await bot.deliver("Pipeline Hook", bot.pipeline(pipeline, SHA1, MR))).is_success
    await wait_for(lambda: _published_twice(bot), what="the re-run's cycle published")
    first, second = sorted(await cycles(bot.runtime), key=lambda c: c.run_attempt)
    assert (first.run_attempt, second.run_attempt) == (1, 2)
    assert first.superseded_by == second.id
    assert (second.status, second.failed, second.total) == ("done", 0, first.total)
    # The same commit ran again: no status of it says a newer commit replaced the first run.
    assert "Superseded by a newer commit" not in {s.description for s in bot.statuses(SHA1)}
    assert "rerun_asked" not in first.context_extra

    # A later delivery of that same hook, with nothing asked since, is a redelivery.
    assert (await bot.deliver("Pipeline Hook", bot.pipeline(pipeline, SHA1, MR))).is_success
    await wait_for(lambda: jobs_done(bot.runtime), what="the redelivery handled")
    assert len(await cycles(bot.runtime)) == 2


async def _published_twice(bot: GitlabBot) -> bool:
    done = [c for c in await cycles(bot.runtime) if c.status == "done"]
    return len(done) == 2 and await jobs_done(bot.runtime)


def _all_passing(report: dict[str, Any]) -> dict[str, Any]:
    """The same test report with every failed or errored case passing."""
    passing = json.loads(json.dumps(report))
    for suite in passing["test_suites"]:
        for case in suite["test_cases"]:
            if case["status"] in ("failed", "error"):
                case.update(status="success", stack_trace=None, system_output=None)
    return passing
