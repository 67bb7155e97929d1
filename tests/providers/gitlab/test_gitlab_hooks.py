"""``aac gitlab hooks apply`` against the fake GitLab through python-gitlab, on SQLite and
PostgreSQL: create, re-apply (no changes), dry run, prune, insufficient rights, a half-applied
plan reported and healed, and the secret stored encrypted, sent to GitLab and never printed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import Runtime
from providers.cli import CliError
from providers.gitlab.cli import apply_hooks
from providers.gitlab.hooks import ManifestError, load_manifest
from storage import orgs
from storage.models import Organization
from tests.bot.test_cli import aac
from tests.fakes.gitlab import DEVELOPER, MAINTAINER, OWNER, FakeGitlab, Fault
from tests.providers.conftest import GITLAB_BOT, GITLAB_PROJECT, GITLAB_TOKEN
from tests.providers.hooks_helpers import run_apply
from tests.providers.hooks_helpers import stored_secret as secret_of

GROUP = "acme/platform"
OTHER = "acme/tools"
URL = "http://testserver/webhooks/gitlab/acme"
READ_ONLY_TOKEN = "glpat-" + "R3adOnly" * 3


@pytest.fixture
def gitlab(fake_gitlab: FakeGitlab) -> FakeGitlab:
    """The bot a Maintainer of two projects and Owner of the group."""
    fake_gitlab.add_member(GITLAB_PROJECT, GITLAB_BOT, MAINTAINER)
    fake_gitlab.add_project(OTHER, members={GITLAB_BOT: MAINTAINER})
    fake_gitlab.add_group(GROUP, members={GITLAB_BOT: OWNER})
    return fake_gitlab


async def make_org(runtime: Runtime, gitlab: FakeGitlab, **integration: Any) -> None:
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, "acme")
        options = {"token": GITLAB_TOKEN, "base_url": gitlab.url, **integration}
        await orgs.set_integration(session, runtime.vault, org, "gitlab", **options)


def manifest(tmp_path: Path, *, projects: list[str], groups: tuple[str, ...] = ()) -> Path:
    """A hooks file (JSON is YAML too) for these projects and groups."""
    path = tmp_path / "gitlab-hooks.yml"
    data = {"events": ["merge_requests", "pipelines", "notes"], "projects": projects}
    path.write_text(json.dumps({**data, "groups": list(groups)}))
    return path


async def apply(runtime: Runtime, path: Path, *flags: str) -> tuple[int, str, str]:
    return await run_apply(apply_hooks, runtime, "acme", path, *flags)


async def stored_secret(runtime: Runtime) -> str | None:
    return await secret_of(runtime, "acme", "gitlab")


async def state(runtime: Runtime) -> dict[str, Any]:
    async with runtime.sessions() as session:
        org = await orgs.get_org(session, "acme")
        assert isinstance(org, Organization)
        return dict(org.settings.get("gitlab_hooks") or {})


async def test_apply_creates_hooks_with_a_stored_secret_and_a_second_apply_changes_nothing(
    runtime: Runtime, gitlab: FakeGitlab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await make_org(runtime, gitlab)
    path = manifest(tmp_path, projects=[GITLAB_PROJECT], groups=(GROUP,))

    code, out, err = await apply(runtime, path)

    assert code == 0, err
    assert "2 to create, 0 to update, 0 unchanged, 0 to delete" in out
    secret = await stored_secret(runtime)
    assert secret
    assert len(secret) >= 32
    for kind, owner in (("project", GITLAB_PROJECT), ("group", GROUP)):
        (hook,) = gitlab.hooks_of(kind, owner)
        assert hook.attributes["url"] == URL
        assert hook.token == secret
        assert hook.attributes["merge_requests_events"] is True
        assert hook.attributes["pipeline_events"] is True
        assert hook.attributes["note_events"] is True
        # GitLab turns push events on unless told otherwise: the bot does not want them.
        assert hook.attributes["push_events"] is False
    assert secret not in out + err + caplog.text
    async with runtime.sessions() as session:
        org = await orgs.get_org(session, "acme")
        assert secret not in (org.integrations["gitlab"].webhook_secret_enc or "")

    writes = len(gitlab.writes())
    code, out, _ = await apply(runtime, path)
    assert code == 0
    assert "0 to create, 0 to update, 2 unchanged, 0 to delete" in out
    assert "nothing to change" in out
    assert len(gitlab.writes()) == writes


async def test_an_existing_hook_is_matched_by_url_and_updated_others_are_left_alone(
    runtime: Runtime, gitlab: FakeGitlab, tmp_path: Path
) -> None:
    await make_org(runtime, gitlab, webhook_secret="the-known-secret")
    ours = gitlab.add_hook("project", GITLAB_PROJECT, URL, merge_requests_events=True)
    theirs = gitlab.add_hook("project", GITLAB_PROJECT, "https://ci.example/hook", note_events=True)

    code, out, err = await apply(runtime, manifest(tmp_path, projects=[GITLAB_PROJECT]))

    assert code == 0, err
    assert f"update  project {GITLAB_PROJECT} (id {ours})" in out
    assert "push_events on -> off" in out
    assert "note_events off -> on" in out
    assert gitlab.hooks[ours].token == "the-known-secret"
    assert gitlab.hooks[ours].attributes["push_events"] is False
    assert gitlab.hooks[theirs].attributes == {
        **gitlab.hooks[theirs].attributes,
        "url": "https://ci.example/hook",
        "push_events": True,
    }
    assert len(gitlab.hooks_of("project", GITLAB_PROJECT)) == 2


async def test_hooks_are_found_on_every_page(
    runtime: Runtime, gitlab: FakeGitlab, tmp_path: Path
) -> None:
    await make_org(runtime, gitlab, webhook_secret="the-known-secret")
    gitlab.max_per_page = 2
    for n in range(5):
        gitlab.add_hook("project", GITLAB_PROJECT, f"https://other.example/{n}")
    ours = gitlab.add_hook(
        "project",
        GITLAB_PROJECT,
        URL,
        push_events=False,
        merge_requests_events=True,
        pipeline_events=True,
        note_events=True,
    )

    code, out, _ = await apply(runtime, manifest(tmp_path, projects=[GITLAB_PROJECT]))

    assert code == 0
    assert f"no-op   project {GITLAB_PROJECT} (id {ours})" in out
    assert "0 to create, 0 to update, 1 unchanged" in out
    pages = [r for r in gitlab.requests if r.path.endswith("/hooks") and r.method == "GET"]
    assert len(pages) == 3


async def test_dry_run_prints_the_plan_and_changes_nothing(
    runtime: Runtime, gitlab: FakeGitlab, tmp_path: Path
) -> None:
    await make_org(runtime, gitlab)

    code, out, _ = await apply(
        runtime, manifest(tmp_path, projects=[GITLAB_PROJECT], groups=(GROUP,)), "--dry-run"
    )

    assert code == 0
    assert "2 to create" in out
    assert "dry run: nothing changed" in out
    assert gitlab.writes() == []
    assert await stored_secret(runtime) is None
    assert await state(runtime) == {}


async def test_an_entry_removed_from_the_file_is_deleted_only_with_prune(
    runtime: Runtime, gitlab: FakeGitlab, tmp_path: Path
) -> None:
    await make_org(runtime, gitlab)
    assert (await apply(runtime, manifest(tmp_path, projects=[GITLAB_PROJECT], groups=(GROUP,))))[
        0
    ] == 0
    (group_hook,) = gitlab.hooks_of("group", GROUP)
    smaller = manifest(tmp_path, projects=[GITLAB_PROJECT])

    code, out, _ = await apply(runtime, smaller)
    assert code == 0
    assert f"keep    group {GROUP} (id {group_hook.id}): no longer in the file" in out
    assert "1 no longer in the file (kept; --prune deletes them)" in out
    assert gitlab.hooks_of("group", GROUP) == [group_hook]

    code, out, _ = await apply(runtime, smaller, "--prune")
    assert code == 0
    assert f"delete  group {GROUP} (id {group_hook.id})" in out
    assert gitlab.hooks_of("group", GROUP) == []
    assert await state(runtime) == {
        "urls": [URL],
        "targets": [f"project {GITLAB_PROJECT}"],
        "resend_secret": False,
    }

    code, out, _ = await apply(runtime, smaller, "--prune")
    assert "0 to create, 0 to update, 1 unchanged, 0 to delete" in out


async def test_a_token_without_the_api_scope_fails_naming_it_and_reports_nothing_applied(
    runtime: Runtime, gitlab: FakeGitlab, tmp_path: Path
) -> None:
    gitlab.add_token(READ_ONLY_TOKEN, GITLAB_BOT, scopes=("read_api",))
    await make_org(runtime, gitlab, token=READ_ONLY_TOKEN)

    code, out, err = await apply(
        runtime, manifest(tmp_path, projects=[GITLAB_PROJECT], groups=(GROUP,))
    )

    assert code == 1
    assert "2 to create" in out
    assert "change 1 of 2 failed" in err
    assert "the GitLab token lacks the `api` scope" in err
    assert "applied: none" in err
    assert "not applied (2):" in err
    assert gitlab.hooks == {}


async def test_a_user_below_maintainer_is_told_the_role_and_nothing_changes(
    runtime: Runtime, gitlab: FakeGitlab, tmp_path: Path
) -> None:
    gitlab.add_member(OTHER, GITLAB_BOT, DEVELOPER)
    await make_org(runtime, gitlab)

    with pytest.raises(CliError) as raised:
        await apply(runtime, manifest(tmp_path, projects=[GITLAB_PROJECT, OTHER]))

    message = str(raised.value)
    assert f"project {OTHER}" in message
    assert "Maintainer role" in message
    assert "nothing changed" in message
    assert gitlab.writes() == []


async def test_group_hooks_without_premium_say_so(
    runtime: Runtime, gitlab: FakeGitlab, tmp_path: Path
) -> None:
    gitlab.group_hooks_licensed = False
    await make_org(runtime, gitlab)

    with pytest.raises(CliError) as raised:
        await apply(runtime, manifest(tmp_path, projects=[GITLAB_PROJECT], groups=(GROUP,)))

    assert "group hooks need GitLab Premium or Ultimate" in str(raised.value)
    assert gitlab.writes() == []


async def test_a_half_applied_plan_is_reported_and_the_next_apply_completes_it(
    runtime: Runtime, gitlab: FakeGitlab, tmp_path: Path
) -> None:
    await make_org(runtime, gitlab)
    third = "acme/third"
    gitlab.add_project(third, members={GITLAB_BOT: MAINTAINER})
    gitlab.inject(Fault("server_error", "POST", rf"/projects/{third}/hooks", times=5, status=500))
    path = manifest(tmp_path, projects=[GITLAB_PROJECT, OTHER, third])

    code, _, err = await apply(runtime, path)

    assert code == 1
    assert f"change 3 of 3 failed: create  project {third}: " in err
    assert "applied (2):" in err
    assert f"project {GITLAB_PROJECT}" in err
    assert "not applied (1):" in err
    assert gitlab.hooks_of("project", third) == []
    assert (await state(runtime))["resend_secret"] is True

    gitlab.faults.clear()
    code, out, _ = await apply(runtime, path)
    assert code == 0
    assert "1 to create, 2 to update" in out  # the secret sent again: it was new last time
    code, out, _ = await apply(runtime, path)
    assert "0 to create, 0 to update, 3 unchanged" in out
    secret = await stored_secret(runtime)
    assert {h.token for h in gitlab.hooks.values()} == {secret}


def test_the_file_must_name_targets_and_the_events_the_bot_needs() -> None:
    with pytest.raises(ManifestError, match="lists no projects and no groups"):
        load_manifest("events: [merge_requests, pipelines, notes]\n", source="f.yml")
    with pytest.raises(ManifestError, match="the bot needs these events too: notes"):
        load_manifest("events: [merge_requests, pipelines]\nprojects: [a/b]\n", source="f.yml")
    with pytest.raises(ManifestError, match="unknown events"):
        load_manifest(
            "events: [merge_requests, pipelines, notes, x]\nprojects: [a/b]\n", source="f"
        )
    with pytest.raises(ManifestError, match=r"f\.yml: projects: .*listed twice"):
        load_manifest("projects: [a/b, a/b]\n", source="f.yml")
    with pytest.raises(ManifestError, match="Extra inputs"):
        load_manifest("projects: [a/b]\nhooks: []\n", source="f.yml")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest("projects: [a/b\n", source="f.yml")
    assert load_manifest("projects: [a/b]\n", source="f").events == [
        "merge_requests",
        "pipelines",
        "notes",
    ]


def test_the_shipped_file_is_valid() -> None:
    shipped = Path(__file__).resolve().parents[3] / "app-manifests" / "gitlab-hooks.yml"
    assert load_manifest(shipped.read_text(), source=str(shipped)).projects


def test_the_command_line_applies_and_exits_non_zero_on_a_bad_file(
    gitlab: FakeGitlab, tmp_path: Path
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    env = {"AAC_PUBLIC_URL": "http://testserver"}
    assert aac("db", "upgrade", db=db).returncode == 0
    assert aac("org", "create", "acme", db=db).returncode == 0
    stored = aac(
        "integration",
        "set",
        "gitlab",
        "--org",
        "acme",
        "--token-stdin",
        "--base-url",
        gitlab.url,
        db=db,
        stdin=GITLAB_TOKEN + "\n",
    )
    assert stored.returncode == 0, stored.stderr
    path = manifest(tmp_path, projects=[GITLAB_PROJECT])

    first = aac("gitlab", "hooks", "apply", "--org", "acme", "--file", str(path), db=db, env=env)
    again = aac("gitlab", "hooks", "apply", "--org", "acme", "--file", str(path), db=db, env=env)
    (tmp_path / "bad.yml").write_text("projects: []\n")
    bad = aac(
        "gitlab", "hooks", "apply", "--org", "acme", "--file", str(tmp_path / "bad.yml"), db=db
    )

    assert first.returncode == 0, first.stderr
    assert "1 to create" in first.stdout
    assert again.returncode == 0
    assert "nothing to change" in again.stdout
    assert bad.returncode == 2
    assert "lists no projects and no groups; nothing changed" in bad.stderr
    assert "Traceback" not in first.stderr + bad.stderr
    assert gitlab.hooks_of("project", GITLAB_PROJECT)[0].token not in first.stdout + first.stderr


async def test_a_refused_token_is_named_before_anything_changes(
    runtime: Runtime, gitlab: FakeGitlab, tmp_path: Path
) -> None:
    await make_org(runtime, gitlab, token="glpat-revoked")

    with pytest.raises(CliError) as raised:
        await apply(runtime, manifest(tmp_path, projects=[GITLAB_PROJECT]))

    assert "GitLab refused the organisation's token" in str(raised.value)
    assert "glpat-revoked" not in str(raised.value)
    assert await stored_secret(runtime) is None
