"""``aac azure hooks apply`` against the fake Azure DevOps through the SDK's service-hooks and
core clients, on SQLite and PostgreSQL: create, re-apply (no changes), dry run, replace, prune,
a user without "Edit subscriptions", a half-applied plan reported and healed, and basic-auth
credentials stored encrypted, sent to Azure and never printed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import Runtime
from providers.azure_devops.cli import apply_hooks
from providers.azure_devops.service_hooks import EVENTS, load_manifest
from providers.cli import CliError
from providers.hook_plans import ManifestError
from storage import orgs
from tests.bot.test_cli import aac
from tests.fakes.azure_devops import FakeAzureDevOps
from tests.providers.azure_devops.conftest import BOT, ORG, PAT, PROJECT
from tests.providers.hooks_helpers import run_apply
from tests.providers.hooks_helpers import stored_secret as secret_of

URL = f"http://testserver/webhooks/azure/{ORG}"
OTHER_PROJECT = "Contoso"


@pytest.fixture
def azure(fake_azure: FakeAzureDevOps) -> FakeAzureDevOps:
    fake_azure.add_project(PROJECT)
    fake_azure.add_project(OTHER_PROJECT)
    return fake_azure


async def make_org(runtime: Runtime, azure: FakeAzureDevOps, **integration: Any) -> None:
    async with runtime.sessions.begin() as session:
        org = await orgs.create_org(session, ORG)
        options = {"token": PAT, "base_url": azure.url, **integration}
        await orgs.set_integration(session, runtime.vault, org, "azure", **options)


def manifest(tmp_path: Path, projects: list[str], events: list[str] | None = None) -> Path:
    """A subscriptions file (JSON is YAML too)."""
    path = tmp_path / "azure-service-hooks.yml"
    path.write_text(json.dumps({"projects": projects, "events": events or list(EVENTS)}))
    return path


async def apply(runtime: Runtime, path: Path, *flags: str) -> tuple[int, str, str]:
    return await run_apply(apply_hooks, runtime, ORG, path, *flags)


async def stored_secret(runtime: Runtime) -> str | None:
    return await secret_of(runtime, ORG, "azure")


def ours(azure: FakeAzureDevOps) -> list[dict[str, Any]]:
    return [s for s in azure.subscriptions.values() if s["consumerInputs"]["url"] == URL]


async def test_apply_subscribes_every_event_and_a_second_apply_changes_nothing(
    runtime: Runtime, azure: FakeAzureDevOps, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await make_org(runtime, azure)
    path = manifest(tmp_path, [PROJECT])

    code, out, err = await apply(runtime, path)

    assert code == 0, err
    assert "6 to create, 0 to update, 0 unchanged, 0 to delete" in out
    secret = await stored_secret(runtime)
    assert secret
    project_id = azure.add_project(PROJECT)
    found = {(s["publisherId"], s["eventType"], s["resourceVersion"]) for s in ours(azure)}
    assert found == {(publisher, event, version) for event, (publisher, version) in EVENTS.items()}
    for subscription in ours(azure):
        assert subscription["publisherInputs"] == {"projectId": project_id}
        assert subscription["consumerId"] == "webHooks"
        assert subscription["consumerActionId"] == "httpRequest"
        assert subscription["consumerInputs"]["basicAuthUsername"] == "aac"
        assert subscription["consumerInputs"]["basicAuthPassword"] == secret
    assert secret not in out + err + caplog.text

    writes = len(azure.writes())
    code, out, _ = await apply(runtime, path)
    assert code == 0
    assert "0 to create, 0 to update, 6 unchanged, 0 to delete" in out
    assert "nothing to change" in out
    assert len(azure.writes()) == writes


async def test_dry_run_prints_the_plan_and_changes_nothing(
    runtime: Runtime, azure: FakeAzureDevOps, tmp_path: Path
) -> None:
    await make_org(runtime, azure)

    code, out, _ = await apply(runtime, manifest(tmp_path, [PROJECT]), "--dry-run")

    assert code == 0
    assert "6 to create" in out
    assert "dry run: nothing changed" in out
    assert azure.writes() == []
    assert await stored_secret(runtime) is None


async def test_a_disabled_or_outdated_subscription_is_replaced_and_others_are_left_alone(
    runtime: Runtime, azure: FakeAzureDevOps, tmp_path: Path
) -> None:
    await make_org(runtime, azure, webhook_secret="the-known-password")
    project_id = azure.add_project(PROJECT)
    common = {
        "publisherId": "tfs",
        "consumerId": "webHooks",
        "consumerActionId": "httpRequest",
        "publisherInputs": {"projectId": project_id},
    }
    mine = azure.add_subscription(
        BOT,
        **common,
        eventType="build.complete",
        resourceVersion="1.0",
        status="disabledBySystem",
        consumerInputs={"url": URL, "basicAuthUsername": "aac", "basicAuthPassword": "old"},
    )
    theirs = azure.add_subscription(
        BOT,
        **common,
        eventType="build.complete",
        resourceVersion="2.0",
        consumerInputs={"url": "https://teams.example/hook"},
    )

    code, out, err = await apply(runtime, manifest(tmp_path, [PROJECT], ["build.complete"]))

    assert code == 0, err
    assert f"update  {PROJECT} build.complete (id {mine})" in out
    assert "resourceVersion 1.0 -> 2.0" in out
    assert "status disabledBySystem -> enabled" in out
    assert azure.subscriptions[mine]["status"] == "enabled"
    assert azure.subscriptions[mine]["consumerInputs"]["basicAuthPassword"] == "the-known-password"
    assert azure.subscriptions[theirs]["consumerInputs"] == {"url": "https://teams.example/hook"}


async def test_an_event_removed_from_the_file_is_deleted_only_with_prune(
    runtime: Runtime, azure: FakeAzureDevOps, tmp_path: Path
) -> None:
    await make_org(runtime, azure)
    both = ["git.pullrequest.created", "build.complete"]
    assert (await apply(runtime, manifest(tmp_path, [PROJECT], both)))[0] == 0
    (build,) = [s for s in ours(azure) if s["eventType"] == "build.complete"]
    smaller = manifest(tmp_path, [PROJECT], ["git.pullrequest.created"])

    code, out, _ = await apply(runtime, smaller)
    assert code == 0
    assert f"keep    {PROJECT} build.complete (id {build['id']}): no longer in the file" in out
    assert len(ours(azure)) == 2

    code, out, _ = await apply(runtime, smaller, "--prune")
    assert code == 0
    assert f"delete  {PROJECT} build.complete (id {build['id']})" in out
    assert [s["eventType"] for s in ours(azure)] == ["git.pullrequest.created"]

    code, out, _ = await apply(runtime, smaller, "--prune")
    assert "0 to create, 0 to update, 1 unchanged, 0 to delete" in out


async def test_a_user_without_edit_subscriptions_fails_naming_the_permission(
    runtime: Runtime, azure: FakeAzureDevOps, tmp_path: Path
) -> None:
    azure.hooks_read_only.add((BOT.id, "*"))
    await make_org(runtime, azure)

    code, out, err = await apply(runtime, manifest(tmp_path, [PROJECT]))

    assert code == 1
    assert "6 to create" in out
    assert "change 1 of 6 failed" in err
    assert 'lacks the service-hooks permission "Edit subscriptions"' in err
    assert "applied: none" in err
    assert "not applied (6):" in err
    assert azure.subscriptions == {}


async def test_a_half_applied_plan_is_reported_and_the_next_apply_completes_it(
    runtime: Runtime, azure: FakeAzureDevOps, tmp_path: Path
) -> None:
    await make_org(runtime, azure)
    locked = (BOT.id, azure.add_project(OTHER_PROJECT))
    azure.hooks_read_only.add(locked)
    path = manifest(
        tmp_path, [PROJECT, OTHER_PROJECT], ["git.pullrequest.created", "build.complete"]
    )

    code, _, err = await apply(runtime, path)

    assert code == 1
    assert f"change 3 of 4 failed: create  {OTHER_PROJECT} git.pullrequest.created: " in err
    assert "applied (2):" in err
    assert "not applied (2):" in err
    assert len(ours(azure)) == 2

    azure.hooks_read_only.discard(locked)
    code, out, _ = await apply(runtime, path)
    assert code == 0
    assert "2 to create, 2 to update" in out  # the new password sent again to the first two
    code, out, _ = await apply(runtime, path)
    assert "0 to create, 0 to update, 4 unchanged" in out
    secret = await stored_secret(runtime)
    assert {s["consumerInputs"]["basicAuthPassword"] for s in ours(azure)} == {secret}


async def test_an_unknown_project_is_named_and_nothing_changes(
    runtime: Runtime, azure: FakeAzureDevOps, tmp_path: Path
) -> None:
    await make_org(runtime, azure)

    with pytest.raises(CliError) as raised:
        await apply(runtime, manifest(tmp_path, [PROJECT, "Nope"]))

    assert "project Nope was not found" in str(raised.value)
    assert "nothing changed" in str(raised.value)
    assert azure.writes() == []


def test_the_file_must_name_projects_and_known_events() -> None:
    with pytest.raises(ManifestError, match="projects"):
        load_manifest("events: [build.complete]\n", source="f.yml")
    with pytest.raises(ManifestError, match="unknown event types"):
        load_manifest("projects: [A]\nevents: [git.push]\n", source="f.yml")
    with pytest.raises(ManifestError, match="each once"):
        load_manifest("projects: [A, a]\n", source="f.yml")
    assert load_manifest("projects: [A]\n", source="f").events == list(EVENTS)
    shipped = Path(__file__).resolve().parents[3] / "app-manifests" / "azure-service-hooks.yml"
    assert load_manifest(shipped.read_text(), source=str(shipped)).events == list(EVENTS)


def test_the_command_line_dry_run_and_a_missing_token(
    azure: FakeAzureDevOps, tmp_path: Path
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/aac.db"
    path = manifest(tmp_path, [PROJECT])
    assert aac("db", "upgrade", db=db).returncode == 0
    assert aac("org", "create", ORG, db=db).returncode == 0
    command = ("azure", "hooks", "apply", "--org", ORG, "--file", str(path), "--dry-run")

    missing = aac(*command, db=db)
    stored = aac(
        "integration",
        "set",
        "azure",
        "--org",
        ORG,
        "--token-stdin",
        "--base-url",
        azure.url,
        db=db,
        stdin=PAT + "\n",
    )
    dry = aac(*command, db=db)

    assert missing.returncode == 2
    assert "has no azure token" in missing.stderr
    assert stored.returncode == 0, stored.stderr
    assert dry.returncode == 0, dry.stderr
    assert "6 to create" in dry.stdout
    assert "dry run: nothing changed" in dry.stdout
    assert azure.subscriptions == {}


async def test_a_refused_pat_is_named_before_anything_changes(
    runtime: Runtime, azure: FakeAzureDevOps, tmp_path: Path
) -> None:
    await make_org(runtime, azure, token="not-a-pat")

    with pytest.raises(CliError) as raised:
        await apply(runtime, manifest(tmp_path, [PROJECT]))

    assert "refused the organisation's personal access token" in str(raised.value)
    assert "not-a-pat" not in str(raised.value)
    assert azure.writes() == []
