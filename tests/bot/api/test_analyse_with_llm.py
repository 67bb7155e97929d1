"""The analyse job with a real litellm call to the local fake model server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from storage import orgs
from storage.models import TestCycle
from tests.bot.api.conftest import ApiHarness
from tests.bot.api.test_report_page import make_analysed_cycle
from tests.fakes.llm import FakeLlmServer, grounded_answer, running_fake_llm

ORG_LLM_KEY = "sk-org-" + "k" * 24
GITHUB_TOKEN = "ghp_" + "Q" * 36


def use_fake_model(api: ApiHarness, fake_llm: FakeLlmServer) -> None:
    """The operator's model setting pointed at the fake."""
    api.runtime.settings = api.runtime.settings.model_copy(
        update={
            "llm_model": "openai/fake-model",
            "llm_api_base": fake_llm.base_url,
            "llm_api_key": "sk-test",
            "llm_timeout": 5.0,
        }
    )


@pytest.fixture
def fake_llm() -> Iterator[FakeLlmServer]:
    with running_fake_llm(slow_seconds=3.0) as server:
        yield server


async def test_summary_is_stored_redacted_and_cached(
    api: ApiHarness, fake_llm: FakeLlmServer
) -> None:
    api.runtime.settings = api.runtime.settings.model_copy(
        update={"llm_model": "openai/fake-model", "llm_timeout": 5.0}
    )
    async with api.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        # The organisation's own key and endpoint, from the vault.
        await orgs.set_integration(
            session, api.runtime.vault, org, "llm", token=ORG_LLM_KEY, base_url=fake_llm.base_url
        )
        await orgs.set_integration(session, api.runtime.vault, org, "github", token=GITHUB_TOKEN)
    first = await make_analysed_cycle(api, sha="a" * 40, leak=GITHUB_TOKEN)
    assert len(fake_llm.requests) == 1
    request = fake_llm.requests[0]
    assert request.headers.get("authorization") == f"Bearer {ORG_LLM_KEY}"
    assert GITHUB_TOKEN not in request.text
    assert "ZeroDivisionError" in request.text
    async with api.runtime.sessions() as session:
        cycle = await session.get(TestCycle, first)
        assert cycle is not None
        assert cycle.analysis is not None
        assert cycle.analysis["llm_reason"] == "ok"
        assert cycle.analysis["llm"]["summary"]
    # The same failures again (a re-run on another commit): answered from the cache.
    second = await make_analysed_cycle(api, sha="b" * 40, leak=GITHUB_TOKEN)
    assert len(fake_llm.requests) == 1
    async with api.runtime.sessions() as session:
        rows = (await session.execute(select(TestCycle).where(TestCycle.id == second))).scalars()
        [cycle] = list(rows)
        assert cycle.analysis is not None
        assert cycle.analysis["llm_reason"] == "cached"
    page = await api.client.get(f"/cycles/{second}", headers=api.auth())
    assert "AI analysis" in page.text
    assert GITHUB_TOKEN not in page.text


async def test_model_failure_falls_back_to_the_deterministic_report(
    api: ApiHarness, fake_llm: FakeLlmServer
) -> None:
    from tests.fakes.llm import Behaviour

    fake_llm.script(Behaviour.ERROR_500, Behaviour.ERROR_500, Behaviour.ERROR_500)
    use_fake_model(api, fake_llm)
    cycle_id = await make_analysed_cycle(api)
    async with api.runtime.sessions() as session:
        cycle = await session.get(TestCycle, cycle_id)
        assert cycle is not None
        assert cycle.status == "done"
        assert cycle.analysis is not None
        assert cycle.analysis["llm"] is None
        assert cycle.analysis["llm_note"]
        assert "500" not in cycle.analysis["llm_note"]


async def test_github_app_secrets_never_reach_the_model(
    api: ApiHarness, fake_llm: FakeLlmServer, github_app_key: tuple[str, str]
) -> None:
    """The App's private key and webhook secret are vault fields like any token: a test log
    printing them (a line of the PEM, the secret on its own) is redacted before the model."""
    from providers.github.app import configure_app

    webhook_secret = "hook-Ab12Cd34Ef56Gh78"
    pem_line = next(line for line in github_app_key[0].splitlines() if len(line) == 64)
    use_fake_model(api, fake_llm)
    async with api.runtime.sessions.begin() as session:
        await configure_app(
            session,
            api.runtime.vault,
            app_id=1,
            private_key_pem=github_app_key[0],
            webhook_secret=webhook_secret,
        )
    await make_analysed_cycle(api, leak=f"{webhook_secret} {pem_line}")
    [request] = fake_llm.requests
    assert "ZeroDivisionError" in request.text
    assert webhook_secret not in request.text
    assert pem_line not in request.text


def linking_answer(body: dict[str, Any]) -> str:
    """A grounded answer whose summary links to the SCM, a CI host and a stranger's host."""
    answer = json.loads(grounded_answer(body))
    answer["summary"] = (
        "See [the PR](https://github.com/acme/widgets/pull/42), "
        "[the run](https://ci.acme.example/job/7) and [this](https://phish.example/login)."
    )
    return json.dumps(answer)


@pytest.mark.parametrize(
    ("ci_hosts", "pipeline_url", "linked"),
    [
        # A CI key holder's pipeline URL allows nothing by itself.
        ((), "https://phish.example/login", {"github.com"}),
        ((), "https://ci.acme.example/job/7", {"github.com"}),
        # The operator named the organisation's CI host: its pipeline links are kept.
        (("ci.acme.example",), "https://ci.acme.example/job/7", {"github.com", "ci.acme.example"}),
        (("ci.acme.example",), "https://phish.example/login", {"github.com"}),
    ],
)
async def test_model_links_only_to_hosts_the_operator_configured(
    api: ApiHarness,
    fake_llm: FakeLlmServer,
    ci_hosts: tuple[str, ...],
    pipeline_url: str,
    linked: set[str],
) -> None:
    use_fake_model(api, fake_llm)
    api.runtime.settings = api.runtime.settings.model_copy(update={"ci_hosts": ci_hosts})
    fake_llm.answer = linking_answer
    async with api.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        await orgs.set_integration(session, api.runtime.vault, org, "github", token=GITHUB_TOKEN)
    cycle_id = await make_analysed_cycle(api, context={"pipeline_url": pipeline_url})
    async with api.runtime.sessions() as session:
        cycle = await session.get(TestCycle, cycle_id)
        assert cycle is not None
        assert cycle.analysis is not None
        summary = cycle.analysis["llm"]["summary"]
    hosts = {urlparse(url).hostname for url in re.findall(r"\]\((https?://[^)\s]+)\)", summary)}
    assert hosts == linked
