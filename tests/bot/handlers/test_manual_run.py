"""``/aac run [SUITE]`` and ``/aac rerun`` of a ``run`` suite through the neutral handlers,
on both engines, with the recording provider: a manual suite opens a fresh cycle with its
testing-node job, refusals are answered on the change, and a re-run is a new attempt."""

from __future__ import annotations

import textwrap

from sqlalchemy import select

from bot.handlers import change, manual_run, rerun
from bot.handlers.context import EventRun
from bot.runtime import Runtime
from providers.events import ChangeOpened, RerunRequested, RunRequested
from providers.gitlab.inbound import parse_event
from storage.models import Job, Organization, RunnerJob, TestCycle
from tests.bot.handlers.test_gitlab_events import HOST, event_run, example
from tests.fakes.provider import RecordingProvider

AAC_YML = textwrap.dedent(
    """\
    suites:
      - name: unit
        triggers: [pull_request]
        run: {command: "pytest", results: "out/*.xml"}
      - name: nightly
        triggers: [manual]
        run: {command: "pytest -m slow", results: "out/*.xml"}
      - name: lint
        triggers: [manual]
    """
).encode()


async def opened_change(runtime: Runtime, provider: RecordingProvider) -> tuple[EventRun, str]:
    """A merge request whose push opened its ``unit`` cycle; its head sha."""
    run = await event_run(runtime, provider)
    opened = parse_event("Merge Request Hook", example("merge_request.open"), bot_logins=set())
    assert isinstance(opened, ChangeOpened)
    provider.files[(opened.repository, ".aac.yml", opened.sha)] = AAC_YML
    await change.start_cycles(run, opened)
    return run, opened.sha


def command(repository: str, user: str, suite: str | None) -> RunRequested:
    return RunRequested(
        source="gitlab", host=HOST, repository=repository, number=1, suite=suite, requested_by=user
    )


async def cycles_of(runtime: Runtime) -> list[TestCycle]:
    async with runtime.sessions() as session:
        rows = await session.execute(select(TestCycle).order_by(TestCycle.created_at))
        return list(rows.scalars())


async def job_states(runtime: Runtime) -> dict[str, str]:
    async with runtime.sessions() as session:
        rows = await session.execute(select(RunnerJob.suite, RunnerJob.state))
        return {suite: state for suite, state in rows.all()}


async def publish_jobs(runtime: Runtime, cycle_id: str) -> int:
    async with runtime.sessions() as session:
        rows = await session.execute(select(Job).where(Job.kind == "publish_cycle"))
        return sum(1 for job in rows.scalars() if job.payload.get("cycle_id") == cycle_id)


async def test_aac_run_starts_a_manual_suite_at_the_head_for_a_writer(runtime: Runtime) -> None:
    provider = RecordingProvider(writers={"dev"})
    run, sha = await opened_change(runtime, provider)
    repo = (await cycles_of(runtime))[0].repository

    await manual_run.handle(run, command(repo, "guest", "nightly"))
    assert provider.calls[-1] == ("refuse_command", "1", "guest", "run")
    assert [c.suite for c in await cycles_of(runtime)] == ["unit"]

    await manual_run.handle(run, command(repo, "dev", "nightly"))
    unit, nightly = await cycles_of(runtime)
    assert (nightly.suite, nightly.sha, nightly.trigger, nightly.pr) == (
        "nightly",
        sha,
        "manual",
        1,
    )
    assert nightly.status == "collecting"
    assert nightly.context_extra == unit.context_extra  # the fork rule's facts carried over
    assert await job_states(runtime) == {"unit": "queued", "nightly": "queued"}
    assert await publish_jobs(runtime, nightly.id) == 1  # its "queued" status
    assert ("get_file", repo, ".aac.yml", sha) in provider.calls

    # Asked again while it runs: nothing new.
    await manual_run.handle(run, command(repo, "dev", "nightly"))
    assert len(await cycles_of(runtime)) == 2


async def test_aac_run_without_a_name_starts_every_manual_suite(runtime: Runtime) -> None:
    provider = RecordingProvider(writers={"dev"})
    run, _sha = await opened_change(runtime, provider)
    repo = (await cycles_of(runtime))[0].repository
    await manual_run.handle(run, command(repo, "dev", None))
    # lint takes its results from CI: nothing would fill a cycle of it, so none is opened.
    assert sorted(c.suite for c in await cycles_of(runtime)) == ["nightly", "unit"]
    assert await job_states(runtime) == {"unit": "queued", "nightly": "queued"}


async def test_aac_run_of_a_suite_reported_by_ci_says_to_rerun_the_pipeline(
    runtime: Runtime,
) -> None:
    provider = RecordingProvider(writers={"dev"})
    run, _sha = await opened_change(runtime, provider)
    repo = (await cycles_of(runtime))[0].repository
    await manual_run.handle(run, command(repo, "dev", "lint"))
    kind, _pr, user, message = provider.calls[-1]
    assert (kind, user) == ("answer_command", "dev")
    assert message.startswith(
        "suite `lint` takes its results from CI; re-run the pipeline instead (`/aac rerun`)."
    )
    assert [c.suite for c in await cycles_of(runtime)] == ["unit"]


async def test_unknown_and_non_manual_suites_are_answered_on_the_change(
    runtime: Runtime,
) -> None:
    provider = RecordingProvider(writers={"dev"})
    run, _sha = await opened_change(runtime, provider)
    repo = (await cycles_of(runtime))[0].repository

    await manual_run.handle(run, command(repo, "dev", "nightlly"))
    kind, pr, user, message = provider.calls[-1]
    assert (kind, pr, user) == ("answer_command", "1", "dev")
    assert "no suite `nightlly`" in message
    assert "suites that can be started by hand: `nightly`." in message  # not lint (CI's)

    await manual_run.handle(run, command(repo, "dev", "unit"))
    message = provider.calls[-1][3]
    assert "suite `unit` cannot be started by hand" in message
    assert "pull_request" in message

    await manual_run.handle(run, command(repo, "dev", "<img src=x>"))
    assert "<img" not in provider.calls[-1][3]  # never echoed back
    assert [c.suite for c in await cycles_of(runtime)] == ["unit"]


async def test_aac_run_followed_by_prose_is_a_suite_name_and_the_reply_shows_the_syntax(
    runtime: Runtime,
) -> None:
    provider = RecordingProvider(writers={"dev"})
    run, sha = await opened_change(runtime, provider)
    note = example("note.merge_request")
    note["project"]["path_with_namespace"] = (await cycles_of(runtime))[0].repository
    note["object_attributes"]["note"] = "/aac run please"
    note["user"]["username"] = "dev"
    asked = parse_event("Note Hook", note, bot_logins=set())
    assert isinstance(asked, RunRequested)
    assert asked.suite == "please"  # explicit: the word after `/aac run` names the suite

    await manual_run.handle(run, asked)
    kind, _pr, user, message = provider.calls[-1]
    assert (kind, user) == ("answer_command", "dev")
    assert message == (
        f"`.aac.yml` at {sha[:12]} has no suite `please`; suites that can be started by hand: "
        "`nightly`. Comment `/aac run SUITE` to start one (the word after `/aac run` "
        "is the suite's name, for example `/aac run nightly`), or `/aac run` alone to start "
        "them all."
    )
    assert [c.suite for c in await cycles_of(runtime)] == ["unit"]


async def test_aac_run_on_a_change_the_bot_never_saw_says_so(runtime: Runtime) -> None:
    provider = RecordingProvider(writers={"dev"})
    run = await event_run(runtime, provider)
    await manual_run.handle(run, command("gitlabhq/gitlab-test", "dev", "nightly"))
    assert provider.calls[-1][:3] == ("answer_command", "1", "dev")
    assert "no commit of this change is known" in provider.calls[-1][3]
    assert await cycles_of(runtime) == []


async def finish(runtime: Runtime, cycle_id: str) -> None:
    async with runtime.sessions.begin() as session:
        cycle = await session.get_one(TestCycle, cycle_id)
        cycle.status, cycle.total, cycle.passed = "done", 3, 3
        job = (
            await session.execute(select(RunnerJob).where(RunnerJob.cycle_id == cycle_id))
        ).scalar_one()
        job.state = "done"


def rerun_of(repository: str, *, reanalyse: bool = False) -> RerunRequested:
    return RerunRequested(
        source="gitlab",
        host=HOST,
        repository=repository,
        number=1,
        reanalyse=reanalyse,
        requested_by="dev",
        needs_permission_check=True,
    )


async def test_aac_rerun_of_a_run_suite_runs_it_again_as_a_new_attempt(runtime: Runtime) -> None:
    provider = RecordingProvider(writers={"dev"})
    run, sha = await opened_change(runtime, provider)
    [first] = await cycles_of(runtime)

    await rerun.handle(run, rerun_of(first.repository))  # still running: left alone
    assert len(await cycles_of(runtime)) == 1

    await finish(runtime, first.id)
    await rerun.handle(run, rerun_of(first.repository))
    old, fresh = await cycles_of(runtime)
    assert (fresh.suite, fresh.sha, fresh.run_attempt, fresh.trigger) == (
        "unit",
        sha,
        2,
        "pull_request",
    )
    assert (fresh.status, fresh.total) == ("collecting", 0)
    # The first attempt keeps its results and report, and points at the new one.
    assert (old.status, old.total, old.superseded_by) == ("done", 3, fresh.id)
    async with runtime.sessions() as session:
        jobs = (await session.execute(select(RunnerJob).order_by(RunnerJob.id))).scalars().all()
        analyses = (await session.execute(select(Job).where(Job.kind == "analyse_cycle"))).scalars()
        assert not list(analyses)  # not re-analysed
    assert [(j.cycle_id, j.state) for j in jobs] == [(old.id, "done"), (fresh.id, "queued")]
    assert await publish_jobs(runtime, fresh.id) == 1

    # /aac reanalyse still re-analyses: the newest attempt, once it has finished.
    await finish(runtime, fresh.id)
    await rerun.handle(run, rerun_of(first.repository, reanalyse=True))
    async with runtime.sessions() as session:
        analysed = (await session.execute(select(Job).where(Job.kind == "analyse_cycle"))).scalars()
        assert [j.payload["cycle_id"] for j in analysed] == [fresh.id]
    assert len(await cycles_of(runtime)) == 2


async def test_a_rerun_of_a_forks_code_still_waits_for_approval(runtime: Runtime) -> None:
    provider = RecordingProvider(writers={"dev"})
    run, _sha = await opened_change(runtime, provider)
    [first] = await cycles_of(runtime)
    async with runtime.sessions.begin() as session:
        org = await session.get_one(Organization, first.org_id)
        org.settings = {**(org.settings or {}), "runners": {"allow_forks": True}}
        cycle = await session.get_one(TestCycle, first.id)
        cycle.context_extra = {**cycle.context_extra, "from_fork": True}
    await finish(runtime, first.id)
    await rerun.handle(run, rerun_of(first.repository))
    _old, fresh = await cycles_of(runtime)
    async with runtime.sessions() as session:
        job = (
            await session.execute(select(RunnerJob).where(RunnerJob.cycle_id == fresh.id))
        ).scalar_one()
    assert (job.state, job.from_fork) == ("awaiting_approval", True)
