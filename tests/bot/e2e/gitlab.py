"""A running bot for GitLab: real HTTP (uvicorn on 127.0.0.1), the real in-process worker, the
fake GitLab, and webhook deliveries built from GitLab's documented payloads
(tests/fixtures/gitlab/webhooks)."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.runtime import Runtime
from providers.factory import ProviderShared
from providers.gitlab.provider import GitlabShared
from tests.bot.e2e.conftest import org_with_integration, report_job, serving
from tests.fakes.gitlab import DEVELOPER, GUEST, FakeGitlab, Note, Status
from tests.providers.conftest import GITLAB_BOT, GITLAB_ORG, GITLAB_TOKEN, gitlab_server

__all__ = ["gitlab_server"]  # the fake instance, a session fixture

HOOK_SECRET = "glhook-e2e-" + "s" * 24
PROJECT = "acme/platform/widgets"
DEVELOPER_USER = "dev-dana"
GUEST_USER = "guest-gil"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "gitlab" / "webhooks"


def documented(name: str) -> dict[str, Any]:
    """One of GitLab's documented webhook payloads."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@dataclass
class GitlabBot:
    url: str
    runtime: Runtime
    gitlab: FakeGitlab
    api_key: str
    http: httpx.AsyncClient

    # -- payloads, retargeted at our project on the fake instance ------------------------
    def _project(self, payload: dict[str, Any]) -> dict[str, Any]:
        payload = copy.deepcopy(payload)
        payload["project"].update(
            {
                "id": self.gitlab.projects[PROJECT],
                "name": "widgets",
                "path_with_namespace": PROJECT,
                "web_url": f"{self.gitlab.url}/{PROJECT}",
            }
        )
        return payload

    def merge_request(
        self, action: str, iid: int, sha: str, *, oldrev: str | None = None
    ) -> dict[str, Any]:
        """``Merge Request Hook``: ``open``, ``update`` (with ``oldrev`` on a push), ``close``."""
        payload = self._project(documented("merge_request.open"))
        attrs = payload["object_attributes"]
        attrs.update({"action": action, "iid": iid, "source_branch": "feature"})
        attrs["target_branch"] = "main"
        attrs["last_commit"]["id"] = sha
        if oldrev is not None:
            attrs["oldrev"] = oldrev
        return payload

    def note(self, iid: int, text: str, *, author: str) -> dict[str, Any]:
        """``Note Hook``: a new note by ``author`` on MR ``iid``."""
        payload = self._project(documented("note.merge_request"))
        user = self.gitlab.users[author]
        payload["user"].update({"id": user.id, "username": author, "name": user.name})
        payload["object_attributes"].update({"note": text, "author_id": user.id})
        payload["merge_request"]["iid"] = iid
        return payload

    def pipeline(self, pipeline_id: int, sha: str, iid: int) -> dict[str, Any]:
        """``Pipeline Hook``: pipeline ``pipeline_id`` of MR ``iid`` finished, failed."""
        payload = self._project(documented("pipeline.success"))
        payload["object_attributes"].update({"id": pipeline_id, "sha": sha, "status": "failed"})
        payload["merge_request"]["iid"] = iid
        return payload

    # -- HTTP ------------------------------------------------------------------------
    async def deliver(
        self,
        event: str,
        payload: dict[str, Any] | bytes,
        *,
        token: str | None = HOOK_SECRET,
        delivery: str | None = None,
    ) -> httpx.Response:
        """POST to our organisation's webhook as GitLab does (``Idempotency-Key`` and
        ``X-Gitlab-Event-UUID`` the same across GitLab's retries of one delivery)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        delivery = delivery or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitLab/17.6.0",
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": delivery,
            "Idempotency-Key": delivery,
            "X-Gitlab-Instance": self.gitlab.url,
        }
        if token is not None:
            headers["X-Gitlab-Token"] = token
        return await self.http.post(
            f"{self.url}/webhooks/gitlab/{GITLAB_ORG}", content=body, headers=headers
        )

    # -- what the fake holds -----------------------------------------------------------
    def statuses(self, sha: str) -> list[Status]:
        return self.gitlab.commit_statuses(PROJECT, sha, name="aac/tests")

    def notes(self, iid: int = 5) -> list[Note]:
        return [n for n in self.gitlab.mr_notes(PROJECT, iid) if n.author == GITLAB_BOT]

    async def report(
        self, tmp: Path, *, sha: str, mr: int, junit: bytes, pipeline_id: int
    ) -> tuple[int, str]:
        """Run ``aac report --wait`` as a job of a GitLab merge request pipeline would."""
        (tmp / "reports").mkdir(exist_ok=True)
        (tmp / "reports" / "junit.xml").write_bytes(junit)
        pipeline_url = f"{self.gitlab.url}/{PROJECT}/-/pipelines/{pipeline_id}"
        environ = {
            "GITLAB_CI": "true",
            "CI": "true",
            "CI_SERVER_URL": self.gitlab.url,
            "CI_PROJECT_PATH": PROJECT,
            "CI_PROJECT_ID": str(self.gitlab.projects[PROJECT]),
            "CI_COMMIT_SHA": sha,
            "CI_COMMIT_REF_NAME": "feature",
            "CI_PIPELINE_ID": str(pipeline_id),
            "CI_PIPELINE_URL": pipeline_url,
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_JOB_ID": str(pipeline_id * 10),
            "CI_MERGE_REQUEST_IID": str(mr),
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "AAC_API_KEY": self.api_key,
        }
        return await report_job(self.url, environ, tmp)


@pytest.fixture
async def gitlab_bot(runtime: Runtime, gitlab_server: FakeGitlab) -> AsyncIterator[GitlabBot]:
    """The bot, and the fake holding ``PROJECT`` (the bot, a Developer and a Guest members)."""
    fake = gitlab_server
    fake.reset()
    fake.add_project(
        PROJECT, members={GITLAB_BOT: DEVELOPER, DEVELOPER_USER: DEVELOPER, GUEST_USER: GUEST}
    )
    key = await org_with_integration(
        runtime,
        GITLAB_ORG,
        "gitlab",
        token=GITLAB_TOKEN,
        webhook_secret=HOOK_SECRET,
        base_url=fake.url,
    )
    shared = ProviderShared(gitlab=GitlabShared(timeout_seconds=5.0))
    async with serving(runtime, shared) as (url, http):
        yield GitlabBot(url, runtime, fake, key, http)
