"""The node's side of ``/api/v1/runners/...``: plain HTTP, retried when the server blips."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

PREFIX = "/api/v1/runners"
RETRIES = 5


class ServerRefused(Exception):
    """The bot answered with a 4xx: the message is its ``detail`` (never a token)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} (HTTP {status} {code})")
        self.status = status
        self.code = code


class JobLost(ServerRefused):
    """The job is not this node's any more (its lease expired and it went to another)."""


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
        code, detail = str(body.get("error", "")), str(body.get("detail", ""))
    except ValueError:
        code, detail = "", response.text[:200]
    kind = JobLost if code == "job_not_held" else ServerRefused
    raise kind(response.status_code, code, detail)


class RunnerClient:
    """One node's connection to the bot; holds its runner token in memory only."""

    def __init__(self, server: str, token: str, *, http: httpx.AsyncClient | None = None) -> None:
        self.server = server.rstrip("/")
        self._token = token
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(60, connect=10))

    def __repr__(self) -> str:
        return f"RunnerClient({self.server!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        for attempt in range(1, RETRIES + 1):
            try:
                response = await self._http.post(
                    f"{self.server}{PREFIX}{path}", headers=headers, **kwargs
                )
            except httpx.TransportError:
                if attempt == RETRIES:
                    raise
            else:
                if response.status_code < 500 or attempt == RETRIES:
                    _raise_for(response)
                    return response
            await asyncio.sleep(min(10.0, 0.2 * 2**attempt) * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    async def register(self, name: str, labels: Sequence[str]) -> dict[str, Any]:
        """Trade the registration token this client holds for a runner token (kept here)."""
        body: dict[str, Any] = (
            await self._post("/register", json={"name": name, "labels": list(labels)})
        ).json()
        self._token = str(body["token"])
        return body

    async def next_job(self, wait: float, labels: Sequence[str]) -> dict[str, Any] | None:
        """A job, or None when none came within ``wait`` seconds; ``labels`` are the node's
        current ones (what it can run now)."""
        response = await self._post(
            f"/jobs/next?wait={wait}",
            json={"labels": list(labels)},
            timeout=httpx.Timeout(wait + 30, connect=10),
        )
        if response.status_code == 204:
            return None
        job: dict[str, Any] = response.json()
        return job

    async def credential(self, job_id: int) -> dict[str, Any]:
        body: dict[str, Any] = (await self._post(f"/jobs/{job_id}/credential")).json()
        return body

    async def started(self, job_id: int) -> bool:
        """Report the command's start; True when the job was cancelled meanwhile."""
        return bool((await self._post(f"/jobs/{job_id}/started")).json().get("cancel"))

    async def heartbeat(self, job_id: int) -> bool:
        """Renew the lease; True when the job was cancelled."""
        return bool((await self._post(f"/jobs/{job_id}/heartbeat")).json().get("cancel"))

    async def log(self, job_id: int, seq: int, text: str) -> dict[str, Any]:
        body: dict[str, Any] = (
            await self._post(f"/jobs/{job_id}/log", json={"seq": seq, "text": text})
        ).json()
        return body

    async def upload(self, job_id: int, files: Sequence[Path], root: Path) -> dict[str, Any]:
        # Read into memory, so a retried request sends the files again, not their ends.
        parts = [
            ("files", (str(path.relative_to(root)), path.read_bytes(), "application/xml"))
            for path in files
        ]
        body: dict[str, Any] = (await self._post(f"/jobs/{job_id}/results", files=parts)).json()
        return body

    async def finish(self, job_id: int, **report: Any) -> str:
        return str((await self._post(f"/jobs/{job_id}/finish", json=report)).json()["state"])
