from __future__ import annotations

from sqlalchemy import select

from bot import cycles
from bot.events import CancelPullRequestCycles, InstallationChanged, map_github_event
from bot.github_app import configure_app
from bot.handlers.installation import apply_installation_change, mark_installation_gone
from bot.handlers.pull_request import cancel_pull_request_cycles, installation_org
from bot.runtime import Runtime
from providers.base import InstallationGone
from providers.context import CiContext
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


async def test_the_same_installation_id_on_two_hosts_is_two_installations(
    runtime: Runtime,
) -> None:
    """A GitHub Enterprise Server counts installations from 1 too: its installation 77 is not
    github.com's. Its events neither re-point nor merge into github.com's row, events naming
    the id alone go to the host their repository URL names, and a gone one is only that
    host's."""
    ghes_url = "https://ghe.example.com/api/v3"
    async with runtime.sessions.begin() as session:
        dotcom = await configure_app(
            session, runtime.vault, app_id=1, private_key_pem=PEM, webhook_secret="s" * 20
        )
        ghes = await configure_app(
            session,
            runtime.vault,
            app_id=2,
            private_key_pem=PEM,
            webhook_secret="t" * 20,
            api_url=ghes_url,
        )
        octo = await orgs.create_org(session, "octo-org")
        await orgs.create_org(session, "ghe-team")
        await apply_installation_change(
            session, change("installation.created", app_id=1, repositories_added=["octo-org/a"])
        )
        await apply_installation_change(
            session,
            InstallationChanged(
                installation_id=77,
                action="installation.created",
                account_login="ghe-team",
                account_type="Organization",
                repositories_added=["ghe-team/tools"],
                app_id=2,
            ),
        )
    async with runtime.sessions() as session:
        rows = (await session.execute(select(Installation).order_by(Installation.id))).scalars()
        assert [(r.github_app_id, r.account_login, r.repositories) for r in rows] == [
            (dotcom.id, "Octo-Org", ["octo-org/a"]),
            (ghes.id, "ghe-team", ["ghe-team/tools"]),
        ]
        assert await installation_org(session, 77) is None  # which host? not guessed
        found = await installation_org(session, 77, "https://api.github.com")
        assert found is not None
        assert found.id == octo.id
        found = await installation_org(session, 77, ghes_url)
        assert found is not None
        assert found.slug == "ghe-team"
    async with runtime.sessions.begin() as session:
        gone = InstallationGone("gone", 77, app_id=2, api_url=ghes_url)
        assert await mark_installation_gone(session, gone) is True
    async with runtime.sessions() as session:
        rows = (await session.execute(select(Installation).order_by(Installation.id))).scalars()
        assert [r.deleted_at is None for r in rows] == [True, False]


def test_events_carry_the_api_url_of_their_repository() -> None:
    payload = {
        "action": "closed",
        "number": 5,
        "installation": {"id": 77},
        "repository": {
            "full_name": "ghe-team/tools",
            "url": "https://ghe.example.com/api/v3/repos/ghe-team/tools",
        },
        "sender": {"login": "someone"},
    }
    action = map_github_event("pull_request", payload, bot_logins=set())
    assert action == CancelPullRequestCycles(
        77, "ghe-team/tools", 5, api_url="https://ghe.example.com/api/v3"
    )
    payload["repository"]["url"] = "https://github.com/ghe-team/tools"  # type: ignore[index]
    action = map_github_event("pull_request", payload, bot_logins=set())
    assert isinstance(action, CancelPullRequestCycles)
    assert action.api_url == ""
