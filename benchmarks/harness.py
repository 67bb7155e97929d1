"""What the benchmarks that drive the whole bot share: a fresh fake GitHub that knows the App,
and the bot on uvicorn against it on a database of the benchmark's own.

The start-up itself is the end-to-end tests' (tests/bot/e2e/conftest.py), so a benchmark
measures the bot those tests hold to; tests never import this module. Import it after the
script has put the repository root first on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from bot.runtime import build_runtime
from config.settings import load_settings
from storage.migrate import upgrade
from tests.bot.e2e.conftest import RunningBot, fast_shared, seed_app_org, serving
from tests.conftest import TEST_KEYS
from tests.fakes.github import FakeGithub
from tests.github_constants import APP_ID, APP_SLUG, INSTALLATION_ID, OWNER, _pem_pair


@contextmanager
def fake_github_with_app() -> Iterator[tuple[FakeGithub, str]]:
    """A started fake GitHub that knows the App and its installation on the test organisation,
    and the App's private key (PEM); stopped on exit."""
    private_pem, public_pem = _pem_pair()
    github = FakeGithub(
        app_id=APP_ID,
        app_slug=APP_SLUG,
        app_public_key=public_pem,
        installations={INSTALLATION_ID: OWNER},
    ).start()
    try:
        yield github, private_pem
    finally:
        github.stop()


@asynccontextmanager
async def running_bot(
    database_url: str, github: FakeGithub, pem: str, *, run_worker: bool = True
) -> AsyncIterator[RunningBot]:
    """The app (with its worker unless ``run_worker`` is off) on a free 127.0.0.1 port, its
    database at ``database_url`` migrated and holding the App and the test organisation."""
    # serving() points the public URL at the port it binds.
    settings = load_settings(
        {"AAC_DATABASE_URL": database_url, "AAC_SECRET_KEYS": TEST_KEYS},
        public_url="http://127.0.0.1",
    )
    runtime = build_runtime(settings)
    try:
        await upgrade(runtime.engine)
        key = await seed_app_org(runtime, private_key_pem=pem, api_url=github.url, key_name="bench")
        # Generous timeouts: a 100k-case upload, and a PostgreSQL start-up on a busy machine.
        async with serving(
            runtime,
            fast_shared(runtime.engine),
            run_worker=run_worker,
            start_seconds=30,
            http_timeout=600,
            stop_seconds=60,
        ) as (url, http):
            yield RunningBot(url, runtime, github, key, http)
    finally:
        await runtime.close()
