"""``aac github-app configure`` and ``link`` as an operator runs them, against the fake GitHub:
the slug and the installation come from GitHub, and a refusal from GitHub stores nothing."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.events import InstallationChanged
from bot.jobs import job_handlers
from bot.runtime import build_runtime
from config.settings import load_settings
from providers.context import CiContext
from providers.factory import ProviderShared, resolve_provider
from providers.github.installations import (
    READ_REPOSITORIES_JOB,
    apply_installation_change,
    find_installation,
)
from providers.github.provider import GithubProvider
from storage import orgs
from storage.models import Job
from storage.queue import ClaimedJob
from tests.bot.test_cli import aac
from tests.fakes.github import FakeGithub, Fault
from tests.github_constants import APP_ID, APP_SLUG, INSTALLATION_ID, OWNER, _pem_pair

SECRET = "s3cret-hook\n"


def query(db: str, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db.split(":///", 1)[1])) as conn:
        return conn.execute(sql).fetchall()


def installations(db: str) -> list[tuple[Any, ...]]:
    return query(
        db,
        "SELECT i.installation_id, i.account_login, i.repositories, o.slug, a.app_id, "
        "i.deleted_at FROM installations i JOIN github_apps a ON a.id = i.github_app_id "
        "LEFT JOIN organizations o ON o.id = i.org_id ORDER BY i.installation_id",
    )


def configure(db: str, pem: Path, api_url: str, *extra: str, app_id: int = APP_ID) -> Any:
    return aac(
        "github-app",
        "configure",
        "--app-id",
        str(app_id),
        "--private-key-file",
        str(pem),
        "--webhook-secret-stdin",
        "--api-url",
        api_url,
        *extra,
        db=db,
        stdin=SECRET,
    )


def link(db: str, installation: int, org: str, *extra: str) -> Any:
    return aac(
        "github-app", "link", "--installation", str(installation), "--org", org, *extra, db=db
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    assert aac("db", "upgrade", db=url).returncode == 0
    assert aac("org", "create", OWNER, db=url).returncode == 0
    return url


@pytest.fixture
def fake(github_server: FakeGithub) -> Iterator[FakeGithub]:
    github_server.reset()
    yield github_server
    assert github_server.validation_errors == []


@pytest.fixture
def pem(tmp_path: Path, github_app_key: tuple[str, str]) -> Path:
    path = tmp_path / "app.pem"
    path.write_text(github_app_key[0])
    return path


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- configure: the slug ---------------------------------------------------------------
def test_configure_asks_github_for_the_slug(db: str, fake: FakeGithub, pem: Path) -> None:
    done = configure(db, pem, fake.url)
    assert done.returncode == 0, done.stderr
    assert f"{APP_SLUG}[bot]" in done.stdout
    assert query(db, "SELECT app_id, slug, bot_login FROM github_apps") == [
        (APP_ID, APP_SLUG, f"{APP_SLUG}[bot]")
    ]
    [asked] = [r for r in fake.requests if r.path == "/app"]
    assert asked.credential == "jwt"
    assert asked.status == 200


def test_configure_with_another_apps_key_stores_nothing(
    db: str, fake: FakeGithub, tmp_path: Path
) -> None:
    other = tmp_path / "other.pem"
    other.write_text(_pem_pair()[0])
    refused = configure(db, other, fake.url)
    assert refused.returncode == 2
    assert f"does not belong to App ID {APP_ID}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert query(db, "SELECT count(*) FROM github_apps") == [(0,)]


def test_configure_with_a_slug_does_not_ask_github(db: str, pem: Path) -> None:
    done = configure(db, pem, closed_port_url(), "--slug", "my-aac")
    assert done.returncode == 0, done.stderr
    assert query(db, "SELECT slug, bot_login FROM github_apps") == [("my-aac", "my-aac[bot]")]


def test_configure_when_github_is_unreachable_stores_nothing(db: str, pem: Path) -> None:
    refused = configure(db, pem, closed_port_url())
    assert refused.returncode == 1
    assert "cannot reach GitHub" in refused.stderr
    assert "--slug" in refused.stderr
    assert query(db, "SELECT count(*) FROM github_apps") == [(0,)]


# -- link ------------------------------------------------------------------------------
async def test_link_reads_an_unseen_installation_from_github(
    db: str, fake: FakeGithub, pem: Path
) -> None:
    assert configure(db, pem, fake.url).returncode == 0
    repos = [f"{OWNER}/repo-{n:03}" for n in range(150)]  # two pages of 100
    fake.set_installation_repositories(INSTALLATION_ID, repos)
    linked = link(db, INSTALLATION_ID, OWNER)
    assert linked.returncode == 0, linked.stderr
    assert f"installation {INSTALLATION_ID} of {OWNER} (150 repositories)" in linked.stdout
    [(iid, account, stored, org, app_id, deleted)] = installations(db)
    assert (iid, account, org, app_id, deleted) == (INSTALLATION_ID, OWNER, OWNER, APP_ID, None)
    assert json.loads(stored) == repos
    [meta] = [r for r in fake.requests if r.path == f"/app/installations/{INSTALLATION_ID}"]
    assert meta.credential == "jwt"
    pages = [r for r in fake.requests if r.path == "/installation/repositories"]
    assert [r.credential for r in pages] == ["installation", "installation"]

    # A cycle of that organisation now finds the installation and publishes through it.
    runtime = build_runtime(load_settings({"AAC_DATABASE_URL": db}))
    shared = ProviderShared()
    try:
        async with runtime.sessions() as session:
            org = await orgs.get_org(session, OWNER)
            assert await find_installation(session, org.id, f"{OWNER}/repo-007") is not None
            ctx = CiContext(source="github", repository=f"{OWNER}/repo-007", sha="a" * 40)
            provider = await resolve_provider(session, runtime.vault, org, ctx, shared)
            assert isinstance(provider, GithubProvider)
    finally:
        await shared.close()
        await runtime.close()


def test_link_of_an_installation_github_does_not_know_changes_nothing(
    db: str, fake: FakeGithub, pem: Path
) -> None:
    assert configure(db, pem, fake.url).returncode == 0
    assert aac("org", "create", "other", db=db).returncode == 0
    unknown = link(db, 999, "other")
    assert unknown.returncode == 2
    assert f"GitHub App {APP_ID} at {fake.url} has no installation 999" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    assert installations(db) == []

    assert link(db, INSTALLATION_ID, OWNER).returncode == 0
    before = installations(db)
    fake.inject(Fault("not_found", "GET", f"/app/installations/{INSTALLATION_ID}"))
    gone = link(db, INSTALLATION_ID, "other")
    assert gone.returncode == 2
    assert f"has no installation {INSTALLATION_ID}" in gone.stderr
    assert installations(db) == before  # still the first organisation's


def test_link_when_github_is_unreachable_changes_nothing(db: str, pem: Path) -> None:
    assert configure(db, pem, closed_port_url(), "--slug", APP_SLUG).returncode == 0
    failed = link(db, INSTALLATION_ID, OWNER)
    assert failed.returncode == 1
    assert "cannot reach GitHub" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert installations(db) == []


def test_link_with_two_apps_needs_and_uses_app_id(
    db: str, fake: FakeGithub, pem: Path, tmp_path: Path
) -> None:
    """github.com and a GitHub Enterprise Server, each with its own App."""
    private, public = _pem_pair()
    ghes = FakeGithub(
        app_id=5151, app_slug="aac-ghes", app_public_key=public, installations={501: "ghe-org"}
    ).start()
    try:
        ghes_pem = tmp_path / "ghes.pem"
        ghes_pem.write_text(private)
        ghes.set_installation_repositories(501, ["ghe-org/tools"])
        assert configure(db, pem, fake.url).returncode == 0
        assert configure(db, ghes_pem, ghes.ghes_url, app_id=5151).returncode == 0
        assert aac("org", "create", "ghe-org", db=db).returncode == 0

        ambiguous = link(db, 501, "ghe-org")
        assert ambiguous.returncode == 2
        assert "several GitHub Apps are configured" in ambiguous.stderr
        assert "--app-id" in ambiguous.stderr
        assert installations(db) == []

        linked = link(db, 501, "ghe-org", "--app-id", "5151")
        assert linked.returncode == 0, linked.stderr
        assert "of ghe-org (1 repository)" in linked.stdout
        [(iid, account, repos, org, app_id, _)] = installations(db)
        assert (iid, account, json.loads(repos), org, app_id) == (
            501,
            "ghe-org",
            ["ghe-org/tools"],
            "ghe-org",
            5151,
        )
        assert {r.prefix for r in ghes.requests} == {"/api/v3"}
        assert ghes.validation_errors == []
    finally:
        ghes.stop()


# -- link: a suspended installation ------------------------------------------------------
async def test_link_of_a_suspended_installation_reads_its_repositories_once_unsuspended(
    db: str, fake: FakeGithub, pem: Path
) -> None:
    """GitHub mints no token for a suspended installation (403), so linking reads it with the
    App's JWT only; the ``installation unsuspend`` event then has its repositories read."""
    assert configure(db, pem, fake.url).returncode == 0
    fake.set_installation_repositories(INSTALLATION_ID, [f"{OWNER}/widgets"])
    fake.suspend(INSTALLATION_ID)
    linked = link(db, INSTALLATION_ID, OWNER)
    assert linked.returncode == 0, linked.stderr
    assert "suspended; repositories will be read when it is unsuspended" in linked.stdout
    [(iid, account, stored, org, _app_id, deleted)] = installations(db)
    assert (iid, account, json.loads(stored), org, deleted) == (
        INSTALLATION_ID,
        OWNER,
        [],
        OWNER,
        None,
    )
    assert query(db, "SELECT suspended_at IS NOT NULL FROM installations") == [(1,)]
    assert not [r for r in fake.requests if "access_tokens" in r.path]

    # Unsuspended on GitHub; its event (GitHub's example lists no repositories) queues a read.
    del fake.suspended[INSTALLATION_ID]
    runtime = build_runtime(load_settings({"AAC_DATABASE_URL": db}))
    shared = ProviderShared()
    try:
        async with runtime.sessions.begin() as session:
            await apply_installation_change(
                session,
                InstallationChanged(
                    source="github",
                    host="api.github.com",
                    installation_id=INSTALLATION_ID,
                    action="installation.unsuspend",
                    account_login=OWNER,
                    account_type="Organization",
                    app_id=APP_ID,
                ),
            )
        async with runtime.sessions() as session:
            [job] = (
                await session.execute(select(Job).where(Job.kind == READ_REPOSITORIES_JOB))
            ).scalars()
            claimed = ClaimedJob(job.id, job.kind, job.payload, 1, job.max_attempts)
        await job_handlers(runtime, shared)[READ_REPOSITORIES_JOB](claimed)
    finally:
        await shared.close()
        await runtime.close()
    [(_, _, stored, _, _, _)] = installations(db)
    assert json.loads(stored) == [f"{OWNER}/widgets"]
    assert query(db, "SELECT suspended_at FROM installations") == [(None,)]


# -- --api-url: the App's JWT goes there ---------------------------------------------------
@pytest.mark.parametrize(
    ("api_url", "shown"),
    [
        ("http://github.example.com/api/v3", "must start with https://"),
        ("https://x-access-token:ghs_LEAKED@github.example.com", "must not contain credentials"),
        ("ftp://github.example.com", "must start with https://"),
    ],
)
def test_configure_refuses_an_api_url_the_jwt_must_not_go_to(
    db: str, fake: FakeGithub, pem: Path, api_url: str, shown: str
) -> None:
    refused = configure(db, pem, api_url)
    assert refused.returncode == 2
    assert "--api-url" in refused.stderr
    assert shown in refused.stderr
    assert "LEAKED" not in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
    assert query(db, "SELECT count(*) FROM github_apps") == [(0,)]
    assert fake.requests == []


def test_configure_accepts_https_and_http_to_this_machine(db: str, pem: Path) -> None:
    for url in ("https://ghe.example.com/api/v3/", "http://localhost:9/api/v3"):
        done = configure(db, pem, url, "--slug", "my-aac")
        assert done.returncode == 0, done.stderr
    assert query(db, "SELECT api_url FROM github_apps ORDER BY id") == [
        ("https://ghe.example.com/api/v3",),
        ("http://localhost:9/api/v3",),
    ]


def test_link_refuses_an_api_url_the_jwt_must_not_go_to(
    db: str, fake: FakeGithub, pem: Path
) -> None:
    assert configure(db, pem, fake.url).returncode == 0
    fake.reset()
    refused = link(db, INSTALLATION_ID, OWNER, "--api-url", "http://ghe.example.com/api/v3")
    assert refused.returncode == 2
    assert "--api-url" in refused.stderr
    assert "must start with https://" in refused.stderr
    # An App stored before the rule, with a plain http:// URL elsewhere: no JWT sent there.
    with contextlib.closing(sqlite3.connect(db.split(":///", 1)[1])) as conn, conn:
        conn.execute("UPDATE github_apps SET api_url = 'http://ghe.example.com/api/v3'")
    stale = link(db, INSTALLATION_ID, OWNER)
    assert stale.returncode == 2
    assert "must start with https://" in stale.stderr
    assert "configure` it again" in stale.stderr
    assert installations(db) == []
    assert fake.requests == []


def test_link_without_arguments_lists_installations_and_says_which_are_unlinked(
    db: str, fake: FakeGithub, pem: Path
) -> None:
    assert configure(db, pem, fake.url).returncode == 0
    with contextlib.closing(sqlite3.connect(db.split(":///", 1)[1])) as conn:
        conn.execute(
            "INSERT INTO installations (installation_id, github_app_id, account_login, "
            "account_type, repositories, permissions, created_at) SELECT 4242, id, "
            "'lookalike', 'Organization', '[]', '{}', '2026-01-01 00:00:00' FROM github_apps"
        )
        conn.commit()
    listed = aac("github-app", "link", db=db)
    assert listed.returncode == 0, listed.stderr
    assert "4242\tlookalike" in listed.stdout
    assert "unlinked: `aac github-app link --installation 4242 --org SLUG`" in listed.stdout
    assert link(db, INSTALLATION_ID, OWNER).returncode == 0
    listed = aac("github-app", "link", db=db)
    assert f"{INSTALLATION_ID}\t{OWNER}" in listed.stdout
    assert f"linked to {OWNER}" in listed.stdout
    half = aac("github-app", "link", "--org", OWNER, db=db)
    assert half.returncode == 2
    assert "both --installation and --org" in half.stderr


def test_org_create_claims_github_accounts(db: str) -> None:
    created = aac("org", "create", "acme", "--github-account", "Acme-Corp", db=db)
    assert created.returncode == 0, created.stderr
    assert "GitHub App installations of acme-corp link to it" in created.stdout
    assert query(db, "SELECT scm_claims FROM organizations WHERE slug = 'acme'") == [
        ('{"github": ["acme-corp"]}',)
    ]
    taken = aac("org", "create", "rival", "--github-account", "acme-corp", db=db)
    assert taken.returncode != 0
    assert "already claimed by 'acme'" in taken.stderr
    assert query(db, "SELECT count(*) FROM organizations WHERE slug = 'rival'") == [(0,)]
