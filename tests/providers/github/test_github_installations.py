from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from providers.events import ChangeClosed, InstallationChanged
from providers.github.app import configure_app
from providers.github.errors import InstallationGone
from providers.github.inbound import parse_event as map_github_event
from providers.github.installations import (
    apply_installation_change,
    installation_org,
    mark_installation_gone,
)
from storage import orgs
from storage.models import Installation
from tests.github_constants import _pem_pair

PEM = _pem_pair()[0]


def change(action: str, **kw: object) -> InstallationChanged:
    return InstallationChanged(
        source="github",
        host="api.github.com",
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
        org = await orgs.create_org(session, "octo", github_accounts=["Octo-Org"])
        row = await apply_installation_change(
            session,
            change("installation.created", repositories_added=["octo-org/a", "octo-org/b"]),
        )
        assert row is not None
        assert row.org_id == org.id  # linked: the organisation claims the account
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


async def test_an_account_named_like_a_tenant_is_not_linked_to_it(runtime: Runtime) -> None:
    """Anyone can create a GitHub account named like a tenant's slug: its installation stays
    unlinked unless an organisation claims the account, or a single-tenant deployment opts in
    to linking by name (AAC_GITHUB_AUTO_LINK)."""
    async with runtime.sessions.begin() as session:
        await configure_app(
            session, runtime.vault, app_id=1, private_key_pem=PEM, webhook_secret="s" * 20
        )
        tenant = await orgs.create_org(session, "octo-org")
        row = await apply_installation_change(session, change("installation.created"))
        assert row is not None
        assert row.org_id is None
        row = await apply_installation_change(
            session, change("installation.created"), auto_link=True
        )
        assert row is not None
        assert row.org_id == tenant.id


async def test_an_account_is_claimed_by_one_organisation_only(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        await orgs.create_org(session, "acme", github_accounts=["Acme-Corp"])
        with pytest.raises(orgs.OrgError, match="already claimed by 'acme'"):
            await orgs.create_org(session, "rival", github_accounts=["acme-corp"])
        with pytest.raises(orgs.OrgError, match="not a valid GitHub login"):
            await orgs.create_org(session, "odd", github_accounts=["-bad-"])


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
            source="github",
            host="api.github.com",
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
        octo = await orgs.create_org(session, "octo-org", github_accounts=["octo-org"])
        await orgs.create_org(session, "ghe-team", github_accounts=["ghe-team"])
        await apply_installation_change(
            session, change("installation.created", app_id=1, repositories_added=["octo-org/a"])
        )
        await apply_installation_change(
            session,
            InstallationChanged(
                source="github",
                host="api.github.com",
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
    assert action == ChangeClosed(
        source="github",
        host="ghe.example.com",
        installation_id=77,
        api_url="https://ghe.example.com/api/v3",
        scm_action="closed",
        repository="ghe-team/tools",
        number=5,
    )
    payload["repository"]["url"] = "https://github.com/ghe-team/tools"  # type: ignore[index]
    action = map_github_event("pull_request", payload, bot_logins=set())
    assert isinstance(action, ChangeClosed)
    assert action.api_url == ""
