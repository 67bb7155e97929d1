"""The App manifest file: what it subscribes to matches what the bot handles, and a bad file
is refused with the key that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.github.inbound import HANDLED_GITHUB_EVENTS
from providers.github.manifest import (
    ManifestError,
    github_host,
    load_manifest,
    parse_manifest,
    web_url_for_api,
)

MANIFEST = Path(__file__).parents[3] / "app-manifests" / "github-app.yml"
PUBLIC = "https://aac.example.com"


def test_the_manifest_subscribes_to_exactly_the_handled_events() -> None:
    manifest = load_manifest(MANIFEST, public_url=PUBLIC)
    assert manifest.handled_events == HANDLED_GITHUB_EVENTS, (
        "app-manifests/github-app.yml and providers/github/inbound.py HANDLED_GITHUB_EVENTS "
        "disagree: "
        f"subscribed only {sorted(manifest.handled_events - HANDLED_GITHUB_EVENTS)}, "
        f"handled only {sorted(HANDLED_GITHUB_EVENTS - manifest.handled_events)}"
    )


def test_the_manifest_asks_the_least_the_features_need() -> None:
    manifest = load_manifest(MANIFEST, public_url=PUBLIC)
    assert dict(manifest.permissions) == {
        "checks": "write",
        "statuses": "write",
        "pull_requests": "write",
        "issues": "write",
        "contents": "read",
        "metadata": "read",
        "actions": "write",
    }


def test_the_github_json_fills_the_public_url_and_leaves_our_keys_out() -> None:
    manifest = load_manifest(MANIFEST, public_url=PUBLIC + "/")
    sent = manifest.github_json("http://127.0.0.1:5000/callback")
    assert sent["url"] == PUBLIC
    assert sent["hook_attributes"] == {"url": f"{PUBLIC}/webhooks/github", "active": True}
    assert sent["redirect_url"] == "http://127.0.0.1:5000/callback"
    assert sent["public"] is False
    assert "always_delivered_events" not in sent
    # GitHub refuses the events it always sends in a subscription list.
    assert not {"installation", "installation_repositories"} & set(sent["default_events"])
    assert "${" not in str(sent)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("name: [", "not valid YAML"),
        ("- a list", "expected a mapping"),
        ("name: x\nurl: https://x\nhook_attributes: {url: https://x}\nperms: {}", "perms"),
        ("url: https://x\nhook_attributes: {url: https://x}", "name must be"),
        ("name: x\nurl: ftp://x\nhook_attributes: {url: https://x}", "url must be an http"),
        ("name: x\nurl: https://x", "hook_attributes.url is required"),
        (
            "name: x\nurl: https://x\nhook_attributes: {url: https://x}\n"
            "default_permissions: {checks: execute}",
            "default_permissions.checks must be one of read, write, admin",
        ),
        (
            "name: x\nurl: ${AAC_HOST}\nhook_attributes: {url: https://x}",
            "only ${AAC_PUBLIC_URL} can be substituted",
        ),
        (
            "name: x\nurl: https://x\nhook_attributes: {url: https://x}\n"
            "default_events: [installation]\nalways_delivered_events: [installation]",
            "both in default_events and always_delivered_events",
        ),
        ("name: " + "x" * 35 + "\nurl: https://x\nhook_attributes: {url: https://x}", "34"),
    ],
)
def test_a_bad_manifest_names_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, public_url=PUBLIC, source="m.yml")
    assert complaint in str(info.value)
    assert str(info.value).startswith("m.yml")


def test_a_missing_manifest_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"cannot read .*nope\.yml"):
        load_manifest(tmp_path / "nope.yml", public_url=PUBLIC)


def test_hosts_of_github_and_enterprise_server() -> None:
    dotcom = github_host("https://github.com/")
    assert (dotcom.web_url, dotcom.api_url) == ("https://github.com", "https://api.github.com")
    assert dotcom.new_app_url(None, "s t") == "https://github.com/settings/apps/new?state=s+t"
    assert dotcom.new_app_url("acme", "s") == (
        "https://github.com/organizations/acme/settings/apps/new?state=s"
    )
    ghes = github_host("https://ghe.example.com")
    assert ghes.api_url == "https://ghe.example.com/api/v3"
    assert web_url_for_api(ghes.api_url) == "https://ghe.example.com"
    assert web_url_for_api("https://api.github.com") == "https://github.com"
