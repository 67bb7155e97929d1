from __future__ import annotations

from sqlalchemy import select

from bot import cycles
from bot.ci_context import CiContext
from bot.events import CancelPullRequestCycles, InstallationChanged
from bot.github_app import configure_app
from bot.handlers.installation import apply_installation_change
from bot.handlers.pull_request import cancel_pull_request_cycles
from bot.runtime import Runtime
from storage import orgs
from storage.models import Installation, Job
from tests.github_constants import _pem_pair

PEM = _pem_pair()[0]


def change(action: str, **kw: object) -> InstallationChanged:
    return InstallationChanged(
        installation_id=77,
        action=action,
        account_login="Octo-Org",
        account_type="Organization",
        **kw,  # type: ignore[arg-type]
    )


async def test_installation_lifecycle(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        await configure_app(
            session, runtime.vault, app_id=1, private_key_pem=PEM, webhook_secret="s" * 20
        )
        org = await orgs.create_org(session, "octo-org")
        row = await apply_installation_change(
            session,
            change("installation.created", repositories_added=["octo-org/a", "octo-org/b"]),
        )
        assert row is not None
        assert row.org_id == org.id  # linked by account login
        await apply_installation_change(
            session,
            change("installation_repositories.removed", repositories_removed=["octo-org/a"]),
        )
        await apply_installation_change(session, change("installation.suspend"))
    async with runtime.sessions() as session:
        [row] = (await session.execute(select(Installation))).scalars().all()
        assert row.repositories == ["octo-org/b"]
        assert row.suspended_at is not None
    async with runtime.sessions.begin() as session:
        await apply_installation_change(session, change("installation.unsuspend"))
        await apply_installation_change(session, change("installation.deleted"))
    async with runtime.sessions() as session:
        [row] = (await session.execute(select(Installation))).scalars().all()
        assert row.suspended_at is None
        assert row.deleted_at is not None


async def test_closing_a_pull_request_cancels_its_pending_cycles(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        await configure_app(
            session, runtime.vault, app_id=1, private_key_pem=PEM, webhook_secret="s" * 20
        )
        org = await orgs.create_org(session, "octo-org")
        await apply_installation_change(session, change("installation.created"))
        ctx = CiContext(source="github", repository="octo-org/a", sha="a" * 40, pr=5)
        pending, _ = await cycles.create_cycle(session, org.id, ctx)
        other_pr, _ = await cycles.create_cycle(
            session, org.id, CiContext(source="github", repository="octo-org/a", sha="b" * 40, pr=6)
        )
    async with runtime.sessions.begin() as session:
        cancelled = await cancel_pull_request_cycles(
            session, CancelPullRequestCycles(77, "octo-org/a", 5)
        )
    assert [c.id for c in cancelled] == [pending.id]
    async with runtime.sessions() as session:
        assert (await cycles.get_cycle(session, org.id, pending.id)).status == "cancelled"  # type: ignore[union-attr]
        assert (await cycles.get_cycle(session, org.id, other_pr.id)).status == "collecting"  # type: ignore[union-attr]
        jobs = (
            await session.execute(select(Job.payload).where(Job.kind == "publish_cycle"))
        ).scalars()
        assert [p["cycle_id"] for p in jobs] == [pending.id]


async def test_installation_events_attach_to_the_app_they_name(runtime: Runtime) -> None:
    """github.com and a GitHub Enterprise Server: ``installation.app_id`` picks the App."""
    async with runtime.sessions.begin() as session:
        await configure_app(
            session, runtime.vault, app_id=1, private_key_pem=PEM, webhook_secret="s" * 20
        )
        ghes = await configure_app(
            session,
            runtime.vault,
            app_id=2,
            private_key_pem=PEM,
            webhook_secret="t" * 20,
            api_url="https://ghe.example.com/api/v3",
        )
        row = await apply_installation_change(session, change("installation.created", app_id=2))
        assert row is not None
        assert row.github_app_id == ghes.id
        unknown = InstallationChanged(
            installation_id=88,
            action="installation.created",
            account_login="x",
            account_type="Organization",
            app_id=3,
        )
        assert await apply_installation_change(session, unknown) is None
    async with runtime.sessions() as session:
        rows = (await session.execute(select(Installation.installation_id))).scalars().all()
    assert rows == [77]


async def test_the_token_url_tells_apps_with_the_same_id_apart(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        await configure_app(
            session, runtime.vault, app_id=7, private_key_pem=PEM, webhook_secret="s" * 20
        )
        ghes = await configure_app(
            session,
            runtime.vault,
            app_id=7,
            private_key_pem=PEM,
            webhook_secret="t" * 20,
            api_url="https://ghe.example.com/api/v3",
        )
        url = "https://ghe.example.com/api/v3/app/installations/77/access_tokens"
        row = await apply_installation_change(
            session, change("installation.created", app_id=7, access_tokens_url=url)
        )
        assert row is not None
        assert row.github_app_id == ghes.id
        # Without the URL two Apps fit: ignored rather than guessed.
        assert (
            await apply_installation_change(
                session, change("installation_repositories.added", app_id=7)
            )
            is None
        )
