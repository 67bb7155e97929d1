"""A change closed: its pending cycles are cancelled, and only its own."""

from __future__ import annotations

from sqlalchemy import select

from bot import cycles
from bot.handlers.change import cancel_pending
from bot.runtime import Runtime
from providers.context import CiContext
from providers.events import ChangeClosed
from providers.github.app import configure_app
from providers.github.installations import apply_installation_change
from storage import orgs
from storage.models import Job
from tests.providers.github.test_github_installations import PEM, change


async def test_closing_a_pull_request_cancels_its_pending_cycles(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        await configure_app(
            session, runtime.vault, app_id=1, private_key_pem=PEM, webhook_secret="s" * 20
        )
        org = await orgs.create_org(session, "octo-org", github_accounts=["octo-org"])
        await apply_installation_change(session, change("installation.created"))
        host = "api.github.com"
        ctx = CiContext(source="github", host=host, repository="octo-org/a", sha="a" * 40, pr=5)
        pending, _ = await cycles.create_cycle(session, org.id, ctx)
        other_pr, _ = await cycles.create_cycle(
            session,
            org.id,
            CiContext(source="github", host=host, repository="octo-org/a", sha="b" * 40, pr=6),
        )
        # The same repository's MR !5 mirrored on GitLab is another change.
        mirror, _ = await cycles.create_cycle(
            session,
            org.id,
            CiContext(
                source="gitlab", host="gitlab.com", repository="octo-org/a", sha="c" * 40, pr=5
            ),
        )
    closed = ChangeClosed(source="github", host=host, repository="octo-org/a", number=5)
    async with runtime.sessions.begin() as session:
        cancelled = await cancel_pending(session, org.id, host, closed)
    assert [c.id for c in cancelled] == [pending.id]
    async with runtime.sessions() as session:
        assert (await cycles.get_cycle(session, org.id, mirror.id)).status == "collecting"  # type: ignore[union-attr]
    async with runtime.sessions() as session:
        assert (await cycles.get_cycle(session, org.id, pending.id)).status == "cancelled"  # type: ignore[union-attr]
        assert (await cycles.get_cycle(session, org.id, other_pr.id)).status == "collecting"  # type: ignore[union-attr]
        jobs = (
            await session.execute(select(Job.payload).where(Job.kind == "publish_cycle"))
        ).scalars()
        assert [p["cycle_id"] for p in jobs] == [pending.id]
