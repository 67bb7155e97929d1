"""A running bot: real HTTP (uvicorn on 127.0.0.1), the real in-process worker, the fake GitHub."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import io
import json
import os
import socket
import sys
import time
import uuid
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.jobs import job_handlers
from bot.reporter.command import build_parser, run_report
from bot.reporter.retry import RetryPolicy
from bot.runtime import Runtime
from providers.factory import ProviderShared
from providers.github.app import configure_app
from providers.github.provider import GithubShared
from storage import apikeys, orgs
from storage.models import Installation
from storage.write_slots import WriteSlots
from tests.conftest import TEST_KEYS
from tests.fakes.github import FakeGithub
from tests.fakes.llm import Behaviour, FakeLlmServer, running_fake_llm
from tests.github_constants import APP_ID, APP_SLUG, INSTALLATION_ID, OWNER

WEBHOOK_SECRET = "whsec-e2e-" + "x" * 20
REPOSITORY = f"{OWNER}/widgets"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "github" / "webhooks"


def official_example(name: str) -> dict[str, Any]:
    """One of GitHub's official webhook examples (see fixtures/github/webhooks/extract.py)."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def retarget(payload: dict[str, Any], *, sender: str = "octocat") -> dict[str, Any]:
    """Point an official example at our repository, installation and a human sender."""
    payload = copy.deepcopy(payload)
    payload["installation"] = {"id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uNzc="}
    repo = payload.get("repository")
    if isinstance(repo, dict):
        repo["full_name"] = REPOSITORY
        repo["name"] = "widgets"
        repo["owner"]["login"] = OWNER
    payload["sender"]["login"] = sender
    payload["sender"]["type"] = "User"
    return payload


def pull_request(action: str, number: int, sha: str, *, base: str = "main") -> dict[str, Any]:
    name = {"synchronize": "pull_request.synchronize"}.get(action, "pull_request.opened")
    payload = retarget(official_example(name))
    payload["action"] = action
    payload["number"] = number
    pr = payload["pull_request"]
    pr["number"] = number
    pr["draft"] = False
    pr["head"]["sha"] = sha
    pr["base"]["ref"] = base
    return payload


@dataclass
class RunningBot:
    url: str
    runtime: Runtime
    github: FakeGithub
    api_key: str
    http: httpx.AsyncClient

    async def deliver(
        self,
        event: str,
        payload: dict[str, Any] | bytes,
        *,
        delivery: str | None = None,
        secret: str = WEBHOOK_SECRET,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return await self.http.post(
            f"{self.url}/webhooks/github",
            content=body,
            headers={
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
                "X-Hub-Signature-256": signature,
                "Content-Type": "application/json",
            },
        )

    async def aac(self, *argv: str) -> tuple[int, bytes, bytes]:
        """Run the operator's ``aac ARGV`` on the bot's database: exit code, stdout, stderr."""
        settings = self.runtime.settings
        env = {
            "PATH": os.environ["PATH"],
            "AAC_DATABASE_URL": settings.database_url,
            "AAC_SECRET_KEYS": TEST_KEYS,
            "AAC_PUBLIC_URL": settings.public_url,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *argv, env=env, stdout=PIPE, stderr=PIPE
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out, err

    async def report(
        self, tmp: Path, *, sha: str, pr: int, junit: bytes, run_id: int = 1001
    ) -> tuple[int, str]:
        """Run ``aac report --wait`` as a GitHub Actions job on a pull request would."""
        (tmp / "reports").mkdir(exist_ok=True)
        (tmp / "reports" / "junit.xml").write_bytes(junit)
        event = tmp / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": pr, "head": {"sha": sha}}}))
        environ = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_SHA": "f" * 40,  # the merge commit; the PR head comes from the event
            "GITHUB_REF": f"refs/pull/{pr}/merge",
            "GITHUB_BASE_REF": "main",
            "GITHUB_HEAD_REF": "feature",
            "GITHUB_RUN_ID": str(run_id),
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event),
            "AAC_API_KEY": self.api_key,
        }
        return await report_job(self.url, environ, tmp)


async def report_job(url: str, environ: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the real ``aac report --wait reports/*.xml`` in a CI job's ``environ``: its exit
    code and everything it printed."""
    args = build_parser().parse_args(
        ["--server", url, "--wait", "--timeout", "30", "--poll-interval", "0.2", "reports/*.xml"]
    )
    out, err = io.StringIO(), io.StringIO()
    policy = RetryPolicy(base_delay=0.05, max_delay=0.2)
    code = await run_report(args, environ=environ, out=out, err=err, policy=policy, cwd=cwd)
    return code, out.getvalue() + err.getvalue()


async def wait_for(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 20, what: str = ""
) -> None:
    """Poll until ``predicate`` holds; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


async def install(bot: RunningBot) -> None:
    """Install the App on the test organisation and wait until it is linked."""
    payload = retarget(official_example("installation.created"))
    payload["installation"] = {
        **official_example("installation.created")["installation"],
        "id": INSTALLATION_ID,
        "app_id": APP_ID,
        "access_tokens_url": f"{bot.github.url}/app/installations/{INSTALLATION_ID}/access_tokens",
        "account": {"login": OWNER, "type": "Organization"},
    }
    payload["repositories"] = [{"full_name": REPOSITORY, "name": "widgets"}]
    assert (await bot.deliver("installation", payload)).status_code == 202

    async def linked() -> bool:
        async with bot.runtime.sessions() as session:
            row = (await session.execute(select(Installation))).scalars().first()
            return row is not None and row.org_id is not None

    await wait_for(linked, what="the installation to be linked by account login")


@pytest.fixture
async def bot(
    runtime: Runtime, github_server: FakeGithub, github_app_key: tuple[str, str]
) -> AsyncIterator[RunningBot]:
    github_server.reset()
    key = await seed_app_org(runtime, private_key_pem=github_app_key[0], api_url=github_server.url)
    async with serving(runtime, fast_shared(runtime.engine)) as (url, http):
        yield RunningBot(url, runtime, github_server, key, http)
    assert github_server.validation_errors == []


async def seed_app_org(
    runtime: Runtime, *, private_key_pem: str, api_url: str, key_name: str = "ci"
) -> str:
    """The GitHub App configured on the GitHub at ``api_url`` and the test organisation owning
    its account: the organisation's CI API key."""
    async with runtime.sessions.begin() as session:
        await configure_app(
            session,
            runtime.vault,
            app_id=APP_ID,
            private_key_pem=private_key_pem,
            webhook_secret=WEBHOOK_SECRET,
            api_url=api_url,
            slug=APP_SLUG,
        )
        org = await orgs.create_org(session, OWNER, github_accounts=[OWNER])
        _, key = await apikeys.create_api_key(session, org, key_name)
    return key


def fast_shared(engine: AsyncEngine) -> ProviderShared:
    """Provider state whose GitHub writes are paced 0.01 s apart (the fake sets no secondary
    limits), across processes through the database's write slots."""
    return ProviderShared(github=GithubShared(pacing_seconds=0.01, write_slots=WriteSlots(engine)))


async def org_with_integration(
    runtime: Runtime, slug: str, source: str, *, token: str, webhook_secret: str, base_url: str
) -> str:
    """An organisation whose ``source`` integration is configured: its CI API key."""
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, slug)
        await orgs.set_integration(
            session,
            runtime.vault,
            org,
            source,
            token=token,
            webhook_secret=webhook_secret,
            base_url=base_url,
        )
        _, key = await apikeys.create_api_key(session, org, "ci")
    return key


@asynccontextmanager
async def serving(
    runtime: Runtime,
    shared: ProviderShared,
    *,
    run_worker: bool = True,
    start_seconds: float = 10,
    http_timeout: float = 10,
    stop_seconds: float = 30,
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The bot on uvicorn with its in-process worker unless ``run_worker`` is off (the
    runtime's public URL pointed at it), and an HTTP client; stopped, and ``shared`` closed,
    on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    runtime.settings = runtime.settings.model_copy(
        update={"public_url": f"http://127.0.0.1:{port}"}
    )
    app = create_app(runtime, handlers=job_handlers(runtime, shared), run_worker=run_worker)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_for(lambda: server.started, start_seconds, "the bot to start")
    try:
        async with httpx.AsyncClient(timeout=http_timeout) as http:
            yield f"http://127.0.0.1:{port}", http
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, stop_seconds)
        await shared.close()


@contextmanager
def slow_model(bot: RunningBot) -> Iterator[FakeLlmServer]:
    """A model that answers only when released: the analysis shows "in progress" meanwhile."""
    with running_fake_llm(slow_seconds=30) as llm:
        llm.script(Behaviour.SLOW)
        bot.runtime.settings = bot.runtime.settings.model_copy(
            update={
                "llm_model": "openai/fake-model",
                "llm_api_base": llm.base_url,
                "llm_api_key": "sk-test",
                "llm_timeout": 40.0,
            }
        )
        try:
            yield llm
        finally:
            llm.release()
