"""A running bot for Azure DevOps: real HTTP (uvicorn on 127.0.0.1), the real in-process
worker, the fake Azure DevOps organisation, and service-hook notifications built from the
documented sample payloads (tests/fixtures/azure_devops/webhooks)."""

from __future__ import annotations

import base64
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
from providers.azure_devops.provider import AzureShared
from providers.factory import ProviderShared
from tests.bot.e2e.conftest import org_with_integration, report_job, serving
from tests.fakes.azure_devops import FakeAzureDevOps, Thread
from tests.providers.azure_devops.conftest import BOT, ORG, PAT, azure_server

__all__ = ["azure_server"]  # the fake organisation, a session fixture

HOOK_PASSWORD = "azhook-e2e-" + "p" * 24
PROJECT = "Fabrikam"
REPOSITORY = f"{PROJECT}/widgets"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "azure_devops" / "webhooks"


def documented(event_type: str) -> dict[str, Any]:
    """One of Microsoft's documented service-hook samples."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{event_type}.json").read_text())
    return data


def notification(event_type: str, **resource: Any) -> dict[str, Any]:
    """A live-looking notification: the documented sample, a fresh id, a real subscription,
    and ``resource`` fields merged over the sample's."""
    payload = copy.deepcopy(documented(event_type))
    payload["subscriptionId"] = "3cff100b-52db-48fe-a774-7d51e24dd183"
    payload["notificationId"] = 267
    payload["id"] = str(uuid.uuid4())
    payload["resource"].update(resource)
    return payload


def _retargeted_pr(pr: dict[str, Any], number: int, sha: str, status: str) -> dict[str, Any]:
    pr = copy.deepcopy(pr)
    pr["repository"]["name"] = "widgets"
    pr["repository"]["project"]["name"] = PROJECT
    pr["pullRequestId"] = number
    pr["status"] = status
    pr["isDraft"] = False
    pr["sourceRefName"] = "refs/heads/feature"
    pr["targetRefName"] = "refs/heads/main"
    pr["lastMergeSourceCommit"]["commitId"] = sha
    return pr


def pull_request(event_type: str, number: int, sha: str, status: str = "active") -> dict[str, Any]:
    """``git.pullrequest.created`` / ``.updated`` / ``.merged`` for our repository."""
    payload = notification(event_type)
    payload["resource"] = _retargeted_pr(payload["resource"], number, sha, status)
    return payload


def comment(number: int, sha: str, text: str, author: dict[str, Any]) -> dict[str, Any]:
    """``ms.vss-code.git-pullrequest-comment-event`` on our PR by ``author``."""
    payload = notification("ms.vss-code.git-pullrequest-comment-event")
    payload["resource"]["pullRequest"] = _retargeted_pr(
        payload["resource"]["pullRequest"], number, sha, "active"
    )
    payload["resource"]["comment"].update({"content": text, "author": author})
    return payload


@dataclass
class AzureBot:
    url: str
    runtime: Runtime
    azure: FakeAzureDevOps
    api_key: str
    http: httpx.AsyncClient

    async def deliver(
        self, payload: dict[str, Any] | bytes, *, password: str | None = HOOK_PASSWORD
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if password is not None:
            token = base64.b64encode(f"aac:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return await self.http.post(
            f"{self.url}/webhooks/azure/{ORG}", content=body, headers=headers
        )

    def statuses(self, pr: int = 7) -> list[dict[str, Any]]:
        return list(self.azure.pr_statuses.get((REPOSITORY.lower(), pr), []))

    def threads(self, pr: int = 7) -> list[Thread]:
        return [
            t for t in self.azure.pr_threads(REPOSITORY, pr) if t.comments[0].author.id == BOT.id
        ]

    async def report(
        self, tmp: Path, *, sha: str, pr: int, junit: bytes, build_id: int = 501
    ) -> tuple[int, str]:
        """Run ``aac report --wait`` as an Azure Pipelines job on a PR build would."""
        (tmp / "reports").mkdir(exist_ok=True)
        (tmp / "reports" / "junit.xml").write_bytes(junit)
        environ = {
            "TF_BUILD": "True",
            "BUILD_BUILDID": str(build_id),
            "BUILD_REASON": "PullRequest",
            "BUILD_REPOSITORY_NAME": "widgets",
            "BUILD_REPOSITORY_PROVIDER": "TfsGit",
            "BUILD_REPOSITORY_URI": f"{self.azure.url}/{PROJECT}/_git/widgets",
            "BUILD_SOURCEBRANCH": f"refs/pull/{pr}/merge",
            "BUILD_SOURCEVERSION": "f" * 40,  # the merge commit; the PR head is below
            "SYSTEM_COLLECTIONURI": f"{self.azure.url}/",
            "SYSTEM_JOBATTEMPT": "1",
            "SYSTEM_PULLREQUEST_PULLREQUESTID": str(pr),
            "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/feature",
            "SYSTEM_PULLREQUEST_SOURCECOMMITID": sha,
            "SYSTEM_PULLREQUEST_TARGETBRANCH": "refs/heads/main",
            "SYSTEM_TEAMPROJECT": PROJECT,
            "AAC_API_KEY": self.api_key,
        }
        return await report_job(self.url, environ, tmp)


@pytest.fixture
async def azure_bot(runtime: Runtime, azure_server: FakeAzureDevOps) -> AsyncIterator[AzureBot]:
    fake = azure_server
    fake.reset()
    key = await org_with_integration(
        runtime, ORG, "azure", token=PAT, webhook_secret=HOOK_PASSWORD, base_url=fake.url
    )

    async def no_sleep(seconds: float) -> None:
        return None

    shared = ProviderShared(azure=AzureShared(max_threads=4, timeout_seconds=5.0, sleep=no_sleep))
    async with serving(runtime, shared) as (url, http):
        yield AzureBot(url, runtime, fake, key, http)
    assert fake.validation_errors == []
