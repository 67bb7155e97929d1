"""The GitHub package builds the organisation's provider: its errors name that organisation."""

from __future__ import annotations

import pytest

from bot.runtime import Runtime
from providers.base import AuthFailed, CommitStatus, StatusState
from providers.context import CiContext
from providers.github.package import build_provider
from providers.shared import ProviderShared
from storage import orgs
from tests.fakes.github import FakeGithub
from tests.providers.conftest import REPOSITORY, SHA

REFUSED = "ghp_" + "R3fus3d" * 5


async def test_a_refused_token_names_the_organisation_and_not_the_token(
    runtime: Runtime, fake_github: FakeGithub
) -> None:
    ctx = CiContext(source="github", repository=REPOSITORY, sha=SHA)
    shared = ProviderShared()
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme-widgets")
        await orgs.set_integration(
            session, runtime.vault, org, "github", token=REFUSED, base_url=fake_github.url
        )
        provider = await build_provider(session, runtime.vault, org, ctx, shared)
    status = CommitStatus(state=StatusState.QUEUED, name="aac / tests", description="queued")
    try:
        with pytest.raises(AuthFailed, match="organisation acme-widgets") as caught:
            await provider.update_commit_status(ctx, status)
    finally:
        await shared.close()
    assert REFUSED not in f"{caught.value} {caught.value!r}"
