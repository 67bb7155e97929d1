"""``aac github-app create|sync|redeliver`` as an operator runs them, against the fake GitHub.

The create tests play the browser: they open the command's local form, post its manifest to
the fake GitHub's "new App" page, and follow GitHub's redirect back with the code and state.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from providers.github.manifest import load_manifest
from tests.bot.test_cli import aac
from tests.fakes.github import FakeGithub
from tests.github_constants import APP_ID, APP_SLUG
from tests.providers.github.test_github_cli import SECRET, closed_port_url, configure, pem, query

MANIFEST = Path(__file__).parents[3] / "app-manifests" / "github-app.yml"
PUBLIC = "https://aac.example.com"
ENV = {"AAC_PUBLIC_URL": PUBLIC}
__all__ = ["pem"]  # a fixture, shared with the configure and link tests


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    assert aac("db", "upgrade", db=url).returncode == 0
    return url


@pytest.fixture
def fake(github_server: FakeGithub, github_app_key: tuple[str, str]) -> Iterator[FakeGithub]:
    github_server.reset()
    github_server.manifest_pem = github_app_key[0]
    yield github_server
    assert github_server.validation_errors == []


# -- create ----------------------------------------------------------------------------
@dataclass
class Create:
    """A running ``aac github-app create`` and the form it serves."""

    process: subprocess.Popen[str]
    action: str  # where the form posts (GitHub's new-App page, with the state)
    manifest: str

    @property
    def state(self) -> str:
        return parse_qs(urlsplit(self.action).query)["state"][0]

    def manifest_redirect(self) -> str:
        """The callback the manifest names (where GitHub sends the browser back)."""
        return str(json.loads(self.manifest)["redirect_url"])

    def post_to_github(self) -> str:
        """Submit the form as the browser would; GitHub's redirect back (the callback URL)."""
        answer = httpx.post(self.action, data={"manifest": self.manifest})
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    def finish(self) -> subprocess.CompletedProcess[str]:
        out, err = self.process.communicate(timeout=60)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, out, err)


def start_create(db: str, github_url: str, *extra: str) -> Create:
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("AAC_")}
        | {"AAC_DATABASE_URL": db, "AAC_LOG_FORMAT": "json"}
        | ENV
    )
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "bot", "github-app", "create", "--github-url", github_url),
            *("--manifest", str(MANIFEST), "--wait", "60", *extra),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    seen = []
    while True:
        line = process.stderr.readline()
        seen.append(line)
        found = re.search(r"open (http://127\.0\.0\.1:\d+/) in a browser", line)
        if found:
            break
        assert line, f"create ended before serving its form: {''.join(seen)}"
    page = httpx.get(found.group(1))
    assert page.status_code == 200
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    manifest = re.search(r'name="manifest" value="([^"]*)"', page.text)
    assert action, page.text
    assert manifest, page.text
    return Create(process, html.unescape(action.group(1)), html.unescape(manifest.group(1)))


def app_rows(db: str) -> list[tuple[object, ...]]:
    return query(
        db,
        "SELECT app_id, slug, api_url, client_id, client_secret_enc IS NOT NULL FROM github_apps",
    )


def test_create_registers_the_app_and_stores_its_credentials(db: str, fake: FakeGithub) -> None:
    flow = start_create(db, fake.url, "--org", "octo-org")
    assert urlsplit(flow.action).path == "/organizations/octo-org/settings/apps/new"
    callback = flow.post_to_github()
    assert callback.startswith("http://127.0.0.1:")
    page = httpx.get(callback)
    assert page.status_code == 200
    assert f"https://github.com/apps/{APP_SLUG}/installations/new" in page.text
    done = flow.finish()
    assert done.returncode == 0, done.stderr
    assert f"GitHub App {APP_ID} ({APP_SLUG}) registered" in done.stdout
    assert f"next: install it on your repositories: https://github.com/apps/{APP_SLUG}/" in (
        done.stdout
    )
    [created] = fake.created_apps
    for secret in (created["pem"], created["webhook_secret"], created["client_secret"]):
        assert secret not in done.stdout + done.stderr + page.text
    assert app_rows(db) == [(APP_ID, APP_SLUG, fake.ghes_url, created["client_id"], 1)]
    [stored] = query(db, "SELECT private_key_enc, webhook_secret_enc FROM github_apps")
    assert created["webhook_secret"] not in str(stored)
    # The manifest GitHub received is the file's, with this deployment's URL.
    [(_, sent, _)] = fake.manifest_codes.values()
    assert sent["hook_attributes"]["url"] == f"{PUBLIC}/webhooks/github"
    assert set(sent["default_events"]) == {
        "check_run",
        "check_suite",
        "issue_comment",
        "pull_request",
        "workflow_run",
    }
    [conversion] = [r for r in fake.requests if r.path.startswith("/app-manifests/")]
    assert (conversion.method, conversion.credential, conversion.prefix) == (
        "POST",
        "none",
        "/api/v3",
    )
    # The stored App works: sync reads it with its new key and finds no drift.
    synced = aac("github-app", "sync", "--manifest", str(MANIFEST), db=db, env=ENV)
    assert synced.returncode == 0, synced.stderr
    assert "match the manifest" in synced.stdout


def test_create_refuses_a_redirect_with_the_wrong_state(db: str, fake: FakeGithub) -> None:
    flow = start_create(db, fake.url)
    callback = flow.post_to_github()
    forged = callback.replace(f"state={flow.state}", "state=forged")
    assert httpx.get(forged).status_code == 400
    done = flow.finish()
    assert done.returncode == 1
    assert "wrong state" in done.stderr
    assert "nothing stored" in done.stderr
    assert "Traceback" not in done.stderr
    assert not [r for r in fake.requests if r.path.startswith("/app-manifests/")]
    assert app_rows(db) == []


def test_create_with_an_expired_code_stores_nothing(db: str, fake: FakeGithub) -> None:
    flow = start_create(db, fake.url)
    callback = flow.post_to_github()
    fake.manifest_code_ttl = timedelta(0)  # the hour GitHub gives has passed
    assert httpx.get(callback).status_code == 502
    done = flow.finish()
    assert done.returncode == 1
    [line] = [x for x in done.stderr.splitlines() if x.startswith("aac:")]
    assert "expired (codes last one hour) or was used already; nothing stored" in line
    assert app_rows(db) == []


def test_create_with_a_used_code_stores_nothing(db: str, fake: FakeGithub, tmp_path: Path) -> None:
    first = start_create(db, fake.url)
    callback = first.post_to_github()
    assert httpx.get(callback).status_code == 200
    assert first.finish().returncode == 0
    code = parse_qs(urlsplit(callback).query)["code"][0]

    other_db = f"sqlite+aiosqlite:///{tmp_path}/other.db"
    assert aac("db", "upgrade", db=other_db).returncode == 0
    second = start_create(other_db, fake.url)
    replayed = second.manifest_redirect() + "?" + urlencode({"code": code, "state": second.state})
    assert httpx.get(replayed).status_code == 502
    done = second.finish()
    assert done.returncode == 1
    assert "or was used already" in done.stderr
    assert query(other_db, "SELECT count(*) FROM github_apps") == [(0,)]


def test_create_when_github_cannot_be_reached_stores_nothing(db: str) -> None:
    flow = start_create(db, closed_port_url())
    # GitHub's answer as the browser would bring it; the code exchange finds no GitHub.
    callback = flow.manifest_redirect() + "?" + urlencode({"code": "c0de", "state": flow.state})
    assert httpx.get(callback).status_code == 502
    done = flow.finish()
    assert done.returncode == 1
    assert "cannot reach GitHub at http://127.0.0.1:" in done.stderr
    assert "nothing stored" in done.stderr
    assert app_rows(db) == []


def test_create_with_a_bad_manifest_serves_nothing(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\nurl: https://x\n")
    done = aac("github-app", "create", "--manifest", str(bad), db=db, env=ENV)
    assert done.returncode == 2
    assert "hook_attributes.url is required" in done.stderr
    assert "--manifest PATH" in done.stderr


# -- sync ------------------------------------------------------------------------------
def sync(db: str) -> subprocess.CompletedProcess[str]:
    return aac("github-app", "sync", "--manifest", str(MANIFEST), db=db, env=ENV)


def test_sync_points_the_webhook_here_and_reports_drift(
    db: str, fake: FakeGithub, pem: Path
) -> None:
    assert configure(db, pem, fake.url).returncode == 0
    done = sync(db)
    assert done.returncode == 0, done.stderr
    assert fake.hook_config == {
        "url": f"{PUBLIC}/webhooks/github",
        "content_type": "json",
        "secret": SECRET.strip(),
        "insecure_ssl": "0",
    }
    assert SECRET.strip() not in done.stdout + done.stderr
    drift = [line for line in done.stdout.splitlines() if line.startswith("drift:")]
    assert "drift: permission contents: none on GitHub, the manifest needs read" in drift
    assert "drift: permission actions: none on GitHub, the manifest needs write" in drift
    assert "drift: event issue_comment: not subscribed on GitHub" in drift
    assert f"{fake.url}/organizations/aac-owner/settings/apps/{APP_SLUG}/permissions" in done.stdout
    assert "only a person" in done.stdout


def test_sync_without_drift_says_so_and_applying_twice_changes_nothing(
    db: str, fake: FakeGithub, pem: Path
) -> None:
    assert configure(db, pem, fake.url).returncode == 0
    manifest = load_manifest(MANIFEST, public_url=PUBLIC)
    fake.app_permissions = dict(manifest.permissions)
    fake.app_events = list(reversed(manifest.events))  # GitHub's order is no drift
    for _ in range(2):
        done = sync(db)
        assert done.returncode == 0, done.stderr
        assert "drift" not in done.stdout
        assert "its permissions and events match the manifest" in done.stdout
    patches = [r.body for r in fake.requests if r.method == "PATCH"]
    assert len(patches) == 2
    assert patches[0] == patches[1]


def test_sync_more_than_needed_is_drift_too(db: str, fake: FakeGithub, pem: Path) -> None:
    assert configure(db, pem, fake.url).returncode == 0
    fake.app_permissions = {"checks": "write", "administration": "write"}
    done = sync(db)
    assert "drift: permission administration: write on GitHub, the manifest asks only none" in (
        done.stdout
    )


def test_sync_without_an_app_says_what_to_do(db: str) -> None:
    done = sync(db)
    assert done.returncode == 2
    assert "run `aac github-app configure` first" in done.stderr


# -- redeliver -------------------------------------------------------------------------
def test_redeliver_asks_again_for_each_failed_event_once(
    db: str, fake: FakeGithub, pem: Path
) -> None:
    assert configure(db, pem, fake.url).returncode == 0
    now = datetime.now(UTC)
    # Healed already: failed, then a redelivery got through.
    fake.add_delivery("healed", status_code=502, delivered_at=now - timedelta(hours=2))
    fake.add_delivery(
        "healed", status_code=200, delivered_at=now - timedelta(hours=1), redelivery=True
    )
    # Failed twice: only its latest attempt is redelivered.
    fake.add_delivery("lost", status_code=0, delivered_at=now - timedelta(hours=3))
    latest = fake.add_delivery("lost", status_code=503, delivered_at=now - timedelta(hours=2))
    # The bot said no (a bad signature): the same request would get the same answer.
    refused = fake.add_delivery("refused", status_code=401, delivered_at=now - timedelta(hours=1))
    # Outside the window.
    fake.add_delivery("old", status_code=502, delivered_at=now - timedelta(hours=9))
    for n in range(150):  # three pages of 100 deliveries, most of them fine
        fake.add_delivery(f"ok-{n}", status_code=200, delivered_at=now - timedelta(minutes=n))

    done = aac("github-app", "redeliver", "--since", "8h", db=db)
    assert done.returncode == 0, done.stderr
    asked = [r.path for r in fake.requests if r.method == "POST"]
    assert asked == [f"/app/hook/deliveries/{latest}/attempts"]
    listed = [r for r in fake.requests if r.path == "/app/hook/deliveries"]
    assert len(listed) == 2
    assert listed[1].query["cursor"].startswith("v1_")
    assert all(r.credential == "jwt" for r in listed)
    assert "1 failed one(s) redelivered" in done.stdout

    # The redelivery got through (the fake logged a new attempt): nothing left to ask for.
    again = aac("github-app", "redeliver", "--since", "8h", db=db)
    assert again.returncode == 0, again.stderr
    assert "0 failed one(s) redelivered" in again.stdout
    assert len([r for r in fake.requests if r.method == "POST"]) == 1

    forced = aac("github-app", "redeliver", "--include-refused", db=db)
    assert "1 failed one(s) redelivered" in forced.stdout
    assert fake.requests[-1].path == f"/app/hook/deliveries/{refused}/attempts"


def test_redeliver_with_a_bad_window_or_no_app(db: str) -> None:
    bad = aac("github-app", "redeliver", "--since", "yesterday", db=db)
    assert bad.returncode == 2
    assert "not a duration like 30m, 8h or 2d" in bad.stderr
    none = aac("github-app", "redeliver", db=db)
    assert none.returncode == 1
    assert "run `aac github-app create` first" in none.stderr


def test_redeliver_when_github_cannot_be_reached(db: str, pem: Path) -> None:
    assert configure(db, pem, closed_port_url(), "--slug", "aac-test").returncode == 0
    done = aac("github-app", "redeliver", db=db)
    assert done.returncode == 1
    assert "connection failed" in done.stderr
    assert "nothing redelivered" in done.stderr
