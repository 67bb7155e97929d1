"""Cycle identity: the organisation, the SCM and its host, the repository and the change."""

from __future__ import annotations

from sqlalchemy import select

from bot import cycles
from bot.runtime import Runtime
from providers.context import CiContext
from storage import orgs
from storage.models import TestCycle


def context(source: str, host: str, sha: str, **kw: object) -> CiContext:
    return CiContext(
        source=source,
        host=host,
        repository="acme/widgets",
        sha=sha,
        pr=5,
        **kw,  # type: ignore[arg-type]
    )


async def test_github_pr_5_and_gitlab_mr_5_do_not_supersede_each_other(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        github, _ = await cycles.create_cycle(
            session, org.id, context("github", "api.github.com", "a" * 40)
        )
        gitlab, _ = await cycles.create_cycle(
            session, org.id, context("gitlab", "gitlab.com", "b" * 40)
        )
        # A new push to the GitHub PR supersedes the GitHub cycle only.
        pushed, _ = await cycles.create_cycle(
            session, org.id, context("github", "api.github.com", "c" * 40)
        )
        # The same MR number on another GitLab host is another change again.
        other_host, _ = await cycles.create_cycle(
            session, org.id, context("gitlab", "git.acme.io", "d" * 40)
        )
    async with runtime.sessions() as session:
        status = {
            row.id: (row.status, row.superseded_by)
            for row in (await session.execute(select(TestCycle))).scalars()
        }
    assert status[github.id] == ("superseded", pushed.id)
    assert status[gitlab.id] == ("collecting", None)
    assert status[other_host.id] == ("collecting", None)


async def test_a_pipeline_fills_the_waiting_cycle_of_its_own_scm_only(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        waiting, _ = await cycles.create_cycle(
            session, org.id, context("github", "api.github.com", "a" * 40)
        )
        mirrored, created = await cycles.create_cycle(
            session, org.id, context("gitlab", "gitlab.com", "a" * 40, pipeline_id="77")
        )
        assert created
        assert mirrored.id != waiting.id
        filled, created = await cycles.create_cycle(
            session, org.id, context("github", "api.github.com", "a" * 40, pipeline_id="12")
        )
        assert not created
        assert filled.id == waiting.id
        assert (
            await cycles.cycles_for_commit(
                session, org.id, "gitlab", "gitlab.com", "acme/widgets", "a" * 40
            )
        ) == [mirrored]


async def test_a_pipeline_rerun_at_an_older_commit_supersedes_only_older_commits(
    runtime: Runtime,
) -> None:
    github = ("github", "api.github.com")
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        first, _ = await cycles.create_cycle(
            session, org.id, context(*github, "a" * 40, pipeline_id="1")
        )
        head, _ = await cycles.create_cycle(session, org.id, context(*github, "b" * 40))
        # GitHub's workflow re-run at commit A: attempt 2 of its run, a cycle of its own.
        rerun, created = await cycles.create_cycle(
            session, org.id, context(*github, "a" * 40, pipeline_id="1", run_attempt=2)
        )
        assert created
        assert (head.status, head.superseded_by) == ("collecting", None)
        assert (first.status, first.superseded_by) == ("superseded", head.id)
        # A commit pushed after both still supersedes every older one.
        newest, _ = await cycles.create_cycle(session, org.id, context(*github, "c" * 40))
        assert (head.superseded_by, rerun.superseded_by) == (newest.id, newest.id)


async def test_the_head_of_a_change_is_its_newest_push_not_its_newest_cycle(
    runtime: Runtime,
) -> None:
    gitlab = ("gitlab", "gitlab.com")
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")

        async def head() -> str | None:
            latest = await cycles.latest_of_change(
                session, org.id, "gitlab", "gitlab.com", "acme/widgets", 5
            )
            return latest.sha if latest is not None else None

        await cycles.create_cycle(session, org.id, context(*gitlab, "a" * 40, trigger="ci"))
        assert await head() == "a" * 40  # no push seen: the newest cycle
        await cycles.create_cycle(
            session, org.id, context(*gitlab, "b" * 40, trigger="pull_request")
        )
        # Newer, but not the change's push: a merged-results pipeline's merge commit, and a
        # re-run at an older commit.
        await cycles.create_cycle(
            session, org.id, context(*gitlab, "e" * 40, trigger="ci", pipeline_id="9")
        )
        await cycles.create_cycle(
            session, org.id, context(*gitlab, "a" * 40, trigger="pull_request", run_attempt=2)
        )
        assert await head() == "b" * 40
