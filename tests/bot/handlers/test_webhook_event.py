"""The webhook job: an event that needs nothing writes nothing (on SQLite every write competes
with webhook intake for the one writer lock); one that acts records that it was processed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from bot.handlers.context import HandlerContext
from bot.handlers.webhook_event import WebhookEventJob
from bot.runtime import Runtime
from bot.webhooks.intake import WEBHOOK_JOB, DeliveryWriter
from bot.worker import PermanentJobError
from providers.factory import ProviderShared
from providers.github.app import configure_app
from storage import orgs, queue
from storage.models import Installation, TestCycle, WebhookDelivery
from tests.github_constants import _pem_pair

PEM = _pem_pair()[0]
EXAMPLES = Path(__file__).parents[2] / "fixtures" / "github" / "webhooks"
# The App GitHub's official installation examples belong to (``installation.app_id``).
EXAMPLE_APP_ID = 29310


async def deliver_and_run(runtime: Runtime, name: str, event_name: str) -> list[str]:
    """Store an official example as a delivery, run its job; the write statements it issued."""
    writer = DeliveryWriter(
        runtime.sessions, runtime.engine.dialect.name, sqlite_path=runtime.settings.sqlite_path
    )
    try:
        assert await writer.submit(
            "github", f"d-{name}", event_name, (EXAMPLES / name).read_bytes()
        )
    finally:
        await writer.close()
    async with runtime.sessions.begin() as session:
        [job] = await queue.claim(session, "w", lease_seconds=30, limit=1, kinds=[WEBHOOK_JOB])
    writes: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SELECT", "PRAGMA")):
            writes.append(statement.split()[0].upper())

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", record)
    try:
        await WebhookEventJob(HandlerContext(runtime, ProviderShared())).run(job)
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", record)
    return writes


async def test_pull_request_of_an_unlinked_installation_writes_nothing(runtime: Runtime) -> None:
    writes = await deliver_and_run(runtime, "pull_request.opened.json", "pull_request")
    assert [w for w in writes if w not in ("BEGIN", "COMMIT", "ROLLBACK")] == []
    async with runtime.sessions() as session:
        row = (await session.execute(select(WebhookDelivery))).scalar_one()
    assert row.processed_at is None


async def test_an_installation_event_is_applied_and_marked_processed(runtime: Runtime) -> None:
    async with runtime.sessions.begin() as session:
        await configure_app(
            session,
            runtime.vault,
            app_id=EXAMPLE_APP_ID,
            private_key_pem=PEM,
            webhook_secret="s" * 20,
        )
    writes = await deliver_and_run(runtime, "installation.created.json", "installation")
    assert "INSERT" in writes  # the installation row
    async with runtime.sessions() as session:
        row = (await session.execute(select(WebhookDelivery))).scalar_one()
    assert row.processed_at is not None
    assert row.action == json.loads((EXAMPLES / "installation.created.json").read_bytes())["action"]


@pytest.mark.parametrize("auto_link", [True, False])
async def test_auto_link_setting_decides_mapping_by_account_login(
    runtime: Runtime, auto_link: bool
) -> None:
    """AAC_GITHUB_AUTO_LINK (single-tenant opt-in): on, an installation maps to the
    organisation named like its account; off (the default), it waits for an operator."""
    runtime.settings = runtime.settings.model_copy(update={"github_auto_link": auto_link})
    async with runtime.sessions.begin() as session:
        await configure_app(
            session,
            runtime.vault,
            app_id=EXAMPLE_APP_ID,
            private_key_pem=PEM,
            webhook_secret="s" * 20,
        )
        org = await orgs.create_org(session, "codertocat")  # the example's account, lower-cased
    await deliver_and_run(runtime, "installation.created.json", "installation")
    async with runtime.sessions() as session:
        row = (await session.execute(select(Installation))).scalar_one()
    assert row.account_login == "Codertocat"
    assert row.org_id == (org.id if auto_link else None)


async def run_stored(
    runtime: Runtime, provider: str, event_name: str, body: bytes, org_id: int | None
) -> None:
    """Store a delivery as intake would, then run its job."""
    writer = DeliveryWriter(
        runtime.sessions, runtime.engine.dialect.name, sqlite_path=runtime.settings.sqlite_path
    )
    try:
        assert await writer.submit(provider, "d-1", event_name, body, org_id)
    finally:
        await writer.close()
    async with runtime.sessions.begin() as session:
        [job] = await queue.claim(session, "w", lease_seconds=30, limit=1, kinds=[WEBHOOK_JOB])
    await WebhookEventJob(HandlerContext(runtime, ProviderShared())).run(job)


async def test_a_gitlab_delivery_is_parsed_by_gitlab_for_its_organisation(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
    body = (EXAMPLES.parents[1] / "gitlab" / "webhooks" / "merge_request.open.json").read_bytes()
    with caplog.at_level(logging.INFO, logger="aac"):
        await run_stored(runtime, "gitlab", "Merge Request Hook", body, org.id)
    # The GitLab parser ran (a neutral ChangeOpened) and the organisation, named by the
    # delivery, has no GitLab token: the factory's NullProvider says so, nothing is opened.
    assert any(getattr(r, "does", None) == "ChangeOpened" for r in caplog.records)
    assert "has no GitLab token" in caplog.text
    async with runtime.sessions() as session:
        assert (await session.execute(select(TestCycle))).first() is None


async def test_a_delivery_of_an_unknown_scm_is_dead_at_once(runtime: Runtime) -> None:
    with pytest.raises(PermanentJobError, match="no SCM package handles 'bitbucket'"):
        await run_stored(runtime, "bitbucket", "pullrequest:created", b"{}", None)
