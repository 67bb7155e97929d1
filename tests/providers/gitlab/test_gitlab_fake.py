"""The fake GitLab answers as GitLab does, seen over plain HTTP without python-gitlab."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.gitlab import FakeGitlab, Fault
from tests.providers.conftest import GITLAB_BOT, GITLAB_MR, GITLAB_PROJECT, GITLAB_TOKEN, SHA

PROJECT = GITLAB_PROJECT.replace("/", "%2F")


@pytest.fixture
def api(fake_gitlab: FakeGitlab) -> httpx.Client:
    return httpx.Client(
        base_url=f"{fake_gitlab.url}/api/v4", headers={"PRIVATE-TOKEN": GITLAB_TOKEN}, timeout=5
    )


def test_a_bad_token_gets_gitlabs_401(fake_gitlab: FakeGitlab) -> None:
    response = httpx.get(f"{fake_gitlab.url}/api/v4/user", headers={"PRIVATE-TOKEN": "nope"})
    assert response.status_code == 401
    assert response.json() == {"message": "401 Unauthorized"}


def test_an_invisible_project_is_gitlabs_404(api: httpx.Client) -> None:
    response = api.get("/projects/acme%2Fsecret/merge_requests/1/notes")
    assert response.status_code == 404
    assert response.json() == {"message": "404 Project Not Found"}


def test_projects_are_addressed_by_encoded_path_or_id(
    api: httpx.Client, fake_gitlab: FakeGitlab
) -> None:
    project_id = fake_gitlab.projects[GITLAB_PROJECT]
    by_path = api.get(f"/projects/{PROJECT}/merge_requests/{GITLAB_MR}/notes")
    by_id = api.get(f"/projects/{project_id}/merge_requests/{GITLAB_MR}/notes")
    assert by_path.status_code == by_id.status_code == 200


def test_lists_carry_gitlabs_pagination_headers(api: httpx.Client, fake_gitlab: FakeGitlab) -> None:
    for i in range(45):
        fake_gitlab.add_note(GITLAB_PROJECT, GITLAB_MR, "someone", f"n{i}")
    response = api.get(f"/projects/{PROJECT}/merge_requests/{GITLAB_MR}/notes", params={"page": 2})
    headers = response.headers
    assert len(response.json()) == 20
    assert (headers["x-page"], headers["x-per-page"], headers["x-next-page"]) == ("2", "20", "3")
    assert (headers["x-prev-page"], headers["x-total"], headers["x-total-pages"]) == (
        "1",
        "45",
        "3",
    )
    links = httpx.Response(200, headers={"link": headers["link"]}).links
    assert set(links) == {"prev", "next", "first", "last"}
    assert f"/projects/{PROJECT}/merge_requests/{GITLAB_MR}/notes?" in links["next"]["url"]
    assert "page=3" in links["next"]["url"]
    last = api.get(links["last"]["url"])
    assert len(last.json()) == 5
    assert last.headers["x-next-page"] == ""


def test_a_throttled_client_gets_rack_attacks_429(
    api: httpx.Client, fake_gitlab: FakeGitlab
) -> None:
    assert api.get("/user").headers["ratelimit-remaining"] == str(fake_gitlab.rate_limit - 1)
    fake_gitlab.inject(Fault("rate_limit", retry_after=42))
    response = api.get("/user")
    assert response.status_code == 429
    assert response.text == "Retry later\n"
    assert response.headers["retry-after"] == "42"
    assert response.headers["ratelimit-remaining"] == "0"
    assert int(response.headers["ratelimit-reset"]) > 0
    assert "GMT" in response.headers["ratelimit-resettime"]


def test_the_commit_status_state_machine(api: httpx.Client, fake_gitlab: FakeGitlab) -> None:
    url = f"/projects/{PROJECT}/statuses/{SHA}"
    assert api.post(url, json={"state": "pending", "name": "n"}).status_code == 201
    again = api.post(url, json={"state": "pending", "name": "n"})
    assert again.status_code == 400
    assert again.json()["message"].startswith("Cannot transition status via :enqueue from :pending")
    assert api.post(url, json={"state": "running", "name": "n"}).json()["status"] == "running"
    running = api.post(url, json={"state": "running", "name": "n"})
    assert running.json()["message"].startswith("Cannot transition status via :run from :running")
    assert api.post(url, json={"state": "success", "name": "n"}).json()["status"] == "success"
    # A finished status is not found again: the next post starts a new one.
    assert api.post(url, json={"state": "running", "name": "n"}).status_code == 201
    assert [s.status for s in fake_gitlab.commit_statuses(GITLAB_PROJECT, SHA, "n")] == [
        "success",
        "running",
    ]
    assert api.post(url, json={"state": "bogus"}).status_code == 400
    long = api.post(url, json={"state": "pending", "name": "m", "description": "x" * 256})
    assert long.json() == {"message": {"description": ["is too long (maximum is 255 characters)"]}}


def test_notes_carry_authors_and_only_the_author_edits(
    api: httpx.Client, fake_gitlab: FakeGitlab
) -> None:
    url = f"/projects/{PROJECT}/merge_requests/{GITLAB_MR}/notes"
    created = api.post(url, json={"body": "hello"}).json()
    assert created["author"]["username"] == GITLAB_BOT
    theirs = fake_gitlab.add_note(GITLAB_PROJECT, GITLAB_MR, "mallory", "mine")
    assert api.put(f"{url}/{theirs}", json={"body": "x"}).status_code == 403
    assert api.delete(f"{url}/{created['id']}").status_code == 204
    gone = api.put(f"{url}/{created['id']}", json={"body": "x"})
    assert (gone.status_code, gone.json()) == (404, {"message": "404 Note Not Found"})
    too_long = api.post(url, json={"body": "x" * 1_000_001})
    assert too_long.status_code == 400
