"""POST /api/v1/cycles/manual and ``aac cycles run`` against the fake GitHub: a ``run`` key is
needed, only a commit an SCM event named may start (the fork rule's facts come from it), and
the SCM failing to read ``.aac.yml`` is answered as such, not with a 500 or a traceback."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage import apikeys, orgs
from storage.models import TestCycle
from tests.bot.e2e.conftest import REPOSITORY, RunningBot, install, pull_request, wait_for
from tests.fakes.github import Fault
from tests.github_constants import OWNER

SHA = "a" * 40
CONTENTS = r".*/contents/\.aac\.yml"
AAC_YML = b"""\
suites:
  - name: unit
    triggers: [pull_request]
  - name: nightly
    triggers: [manual]
    run: {command: "true", results: "none/*.xml"}
"""


async def run_key(bot: RunningBot) -> dict[str, str]:
    async with bot.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, OWNER)
        _, key = await apikeys.create_api_key(session, org, "manual", scopes=("run",))
    return {"Authorization": f"Bearer {key}"}


def body(sha: str = SHA) -> dict[str, Any]:
    return {"source": "github", "repository": REPOSITORY, "sha": sha, "suite": "nightly"}


async def seen_on_a_pull_request(bot: RunningBot) -> None:
    await install(bot)
    bot.github.add_contents(REPOSITORY, ".aac.yml", AAC_YML, ref=SHA)
    assert (await bot.deliver("pull_request", pull_request("opened", 7, SHA))).status_code == 202

    async def seen() -> bool:
        async with bot.runtime.sessions() as session:
            found = await session.execute(
                select(TestCycle.id).where(
                    TestCycle.sha == SHA, TestCycle.trigger == "pull_request", TestCycle.pr == 7
                )
            )
            return found.first() is not None

    await wait_for(seen, 30, "the pull request's cycle")


async def test_a_manual_start_needs_a_run_key_and_a_commit_the_scm_named(
    bot: RunningBot,
) -> None:
    url = f"{bot.url}/api/v1/cycles/manual"
    report_key = {"Authorization": f"Bearer {bot.api_key}"}
    refused = await bot.http.post(url, json=body(), headers=report_key)
    assert refused.status_code == 403, refused.text
    assert (refused.json()["error"], refused.json()["required_scope"]) == (
        "insufficient_scope",
        "run",
    )

    runs = await run_key(bot)
    unseen = await bot.http.post(url, json=body(), headers=runs)
    assert unseen.status_code == 409, unseen.text
    assert unseen.json()["error"] == "unknown_commit"
    # A cycle a CI job created says nothing the SCM vouches for about where the code is from.
    made = await bot.http.post(
        f"{bot.url}/api/v1/cycles",
        json={**body(), "suite": "tests", "trigger": "pull_request"},
        headers=report_key,
    )
    assert made.status_code == 201, made.text
    still = await bot.http.post(url, json=body(), headers=runs)
    assert (still.status_code, still.json()["error"]) == (409, "unknown_commit")

    await seen_on_a_pull_request(bot)
    started = await bot.http.post(url, json=body(), headers=runs)
    assert started.status_code == 201, started.text
    assert (started.json()["trigger"], started.json()["pr"]) == ("manual", 7)


async def test_the_scm_failing_to_read_the_file_is_answered_by_kind(bot: RunningBot) -> None:
    await seen_on_a_pull_request(bot)
    url, runs = f"{bot.url}/api/v1/cycles/manual", await run_key(bot)

    # 401 twice: the bot mints a fresh installation token once, then gives up.
    bot.github.inject(Fault("bad_credentials", method="GET", path=CONTENTS, times=2))
    denied = await bot.http.post(url, json=body(), headers=runs)
    assert (denied.status_code, denied.json()["error"]) == (409, "scm_unavailable"), denied.text
    assert ".aac.yml" in denied.json()["detail"]

    bot.github.inject(Fault("primary_rate_limit", method="GET", path=CONTENTS, retry_after=30))
    limited = await bot.http.post(url, json=body(), headers=runs)
    assert (limited.status_code, limited.json()["error"]) == (429, "scm_rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 31

    bot.github.inject(Fault("server_error", method="GET", path=CONTENTS, times=20))
    down = await bot.http.post(url, json=body(), headers=runs)
    assert (down.status_code, down.json()["error"]) == (503, "scm_error"), down.text
    bot.github.faults.clear()

    # The operator's command says it in one line and exits non-zero.
    bot.github.inject(Fault("bad_credentials", method="GET", path=CONTENTS, times=2))
    code, _, err = await bot.aac(
        "cycles", "run", "--repo", REPOSITORY, "--sha", SHA, "--suite", "nightly"
    )
    assert code != 0
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, err.decode()
    assert "cannot read .aac.yml" in lines[0]
