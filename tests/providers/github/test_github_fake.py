"""The fake GitHub itself: the endpoints other parts of the bot use, headers and validation."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import gidgethub
import httpx
import pytest

from providers.github.auth import AppCredentials
from providers.github.provider import GitHubClient
from tests.fakes.github import FakeGithub, request_body_schemas
from tests.providers.conftest import APP_ID, INSTALLATION_ID, OWNER, PAT, PAT_LOGIN, REPOSITORY


def _client(http: httpx.AsyncClient, fake: FakeGithub) -> GitHubClient:
    return GitHubClient(http, requester="aac-test", base_url=fake.url)


def test_schema_extract_covers_every_body_the_bot_sends() -> None:
    schemas = request_body_schemas()
    assert set(schemas) == {
        "POST /app/installations/{installation_id}/access_tokens",
        "POST /repos/{owner}/{repo}/check-runs",
        "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
        "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
        "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
        "POST /repos/{owner}/{repo}/statuses/{sha}",
        "PATCH /app/hook/config",
    }
    assert "$ref" not in json.dumps(schemas)  # self-contained


async def test_invalid_body_gets_githubs_422_and_is_recorded(
    http_client: httpx.AsyncClient, fake_github: FakeGithub
) -> None:
    gh = _client(http_client, fake_github)
    with pytest.raises(gidgethub.BadRequest) as raised:
        await gh.post(
            f"/repos/{REPOSITORY}/statuses/abc",
            data={"state": "exploded", "context": "x"},
            oauth_token=PAT,
        )
    assert raised.value.status_code == 422
    assert fake_github.validation_errors
    assert "state" in fake_github.validation_errors[0]
    assert fake_github.statuses == []
    fake_github.validation_errors.clear()  # expected here; the fixture checks the rest


async def test_app_endpoints_need_a_valid_jwt(
    http_client: httpx.AsyncClient, fake_github: FakeGithub, github_app_key: tuple[str, str]
) -> None:
    gh = _client(http_client, fake_github)
    app_jwt = AppCredentials(str(APP_ID), github_app_key[0]).jwt()
    app = await gh.getitem("/app", jwt=app_jwt)
    assert app["id"] == APP_ID
    installation = await gh.getitem(f"/app/installations/{INSTALLATION_ID}", jwt=app_jwt)
    assert installation["account"]["login"] == OWNER
    with pytest.raises(gidgethub.BadRequest) as raised:
        await gh.getitem("/app", oauth_token=PAT)  # a PAT is not a JWT
    assert raised.value.status_code == 401


async def test_rate_limit_headers_and_etag(
    http_client: httpx.AsyncClient, fake_github: FakeGithub
) -> None:
    fake_github.add_contents(REPOSITORY, ".aac.yml", b"suite: tests\n")
    url = f"{fake_github.url}/repos/{REPOSITORY}/contents/.aac.yml"
    headers = {"authorization": f"token {PAT}"}
    first = await http_client.get(url, headers=headers)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit"] == "5000"
    assert first.headers["x-ratelimit-resource"] == "core"
    assert int(first.headers["x-ratelimit-used"]) >= 1
    etag = first.headers["etag"]
    second = await http_client.get(url, headers={**headers, "if-none-match": etag})
    assert second.status_code == 304
    assert second.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]


async def test_contents_are_base64(http_client: httpx.AsyncClient, fake_github: FakeGithub) -> None:
    data = b"suite: tests\n" * 20
    fake_github.add_contents(REPOSITORY, "config/.aac.yml", data, ref="feature")
    gh = _client(http_client, fake_github)
    item = await gh.getitem(
        "/repos/{owner}/{repo}/contents/{+path}{?ref}",
        {"owner": OWNER, "repo": "widgets", "path": "config/.aac.yml", "ref": "feature"},
        oauth_token=PAT,
    )
    assert item["encoding"] == "base64"
    assert base64.b64decode(item["content"]) == data
    with pytest.raises(gidgethub.BadRequest):
        await gh.getitem(f"/repos/{REPOSITORY}/contents/missing.yml", oauth_token=PAT)


async def test_artifacts_list_and_zip_redirect(
    http_client: httpx.AsyncClient, fake_github: FakeGithub
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("junit.xml", "<testsuites/>")
    artifact_id = fake_github.add_artifact(REPOSITORY, 555, "test-results", buffer.getvalue())
    gh = _client(http_client, fake_github)
    listed = [
        a
        async for a in gh.getiter(
            f"/repos/{REPOSITORY}/actions/runs/555/artifacts",
            oauth_token=PAT,
            iterable_key="artifacts",
        )
    ]
    assert [a["id"] for a in listed] == [artifact_id]
    download = await http_client.get(
        listed[0]["archive_download_url"], headers={"authorization": f"token {PAT}"}
    )
    assert download.status_code == 302
    blob = await http_client.get(download.headers["location"])  # pre-signed: no auth
    with zipfile.ZipFile(io.BytesIO(blob.content)) as archive:
        assert archive.read("junit.xml") == b"<testsuites/>"


async def test_collaborator_permission(
    http_client: httpx.AsyncClient, fake_github: FakeGithub
) -> None:
    fake_github.set_permission(REPOSITORY, "alice", "write")
    gh = _client(http_client, fake_github)
    alice = await gh.getitem(f"/repos/{REPOSITORY}/collaborators/alice/permission", oauth_token=PAT)
    bob = await gh.getitem(f"/repos/{REPOSITORY}/collaborators/bob/permission", oauth_token=PAT)
    assert (alice["permission"], bob["permission"]) == ("write", "none")


async def test_installation_tokens_only_see_their_account(
    http_client: httpx.AsyncClient, fake_github: FakeGithub, github_app_key: tuple[str, str]
) -> None:
    gh = _client(http_client, fake_github)
    app_jwt = AppCredentials(str(APP_ID), github_app_key[0]).jwt()
    minted = await gh.post(
        f"/app/installations/{INSTALLATION_ID}/access_tokens", data=b"", jwt=app_jwt
    )
    token = minted["token"]
    assert minted["expires_at"].endswith("Z")
    await gh.getitem(f"/repos/{REPOSITORY}/issues/1/comments", oauth_token=token)
    with pytest.raises(gidgethub.BadRequest) as raised:
        await gh.getitem("/repos/someone-else/repo/issues/1/comments", oauth_token=token)
    assert raised.value.status_code == 404
    user = await gh.getitem("/user", oauth_token=PAT)
    assert user["login"] == PAT_LOGIN


async def test_link_pagination_shape(
    http_client: httpx.AsyncClient, fake_github: FakeGithub
) -> None:
    for i in range(5):
        fake_github.add_comment(REPOSITORY, 3, "someone", f"c{i}")
    url = f"{fake_github.url}/repos/{REPOSITORY}/issues/3/comments?per_page=2&page=2"
    response = await http_client.get(url, headers={"authorization": f"token {PAT}"})
    assert [c["body"] for c in response.json()] == ["c2", "c3"]
    link = response.headers["link"]
    for rel in ("prev", "first", "next", "last"):
        assert f'rel="{rel}"' in link
    assert "page=3" in link
