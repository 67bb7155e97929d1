"""Every report link the bot hands out opens in a browser: no API key, no 403."""

from __future__ import annotations

import re
from pathlib import Path

from tests.bot.e2e.conftest import RunningBot, install, wait_for
from tests.bot.e2e.test_github_flow import FAILING_JUNIT, SHA1

LINK = re.compile(r"https?://[^\s)\"'<>]+/cycles/[0-9a-f]{32}[^\s)\"'<>]*")


async def _opens(bot: RunningBot, url: str) -> None:
    """The URL answers a browser (no Authorization header) with the HTML page."""
    assert "sig=" in url, url
    page = await bot.http.get(url.replace("&amp;", "&"))
    assert page.status_code == 200, (url, page.text[:200])
    assert "text/html" in page.headers["content-type"]


async def test_links_in_output_api_comment_and_check_run_open(
    bot: RunningBot, tmp_path: Path
) -> None:
    await install(bot)
    code, output = await bot.report(tmp_path, sha=SHA1, pr=7, junit=FAILING_JUNIT)
    assert code == 0, output
    printed = LINK.findall(output)
    assert printed, output
    for url in printed:
        await _opens(bot, url)

    headers = {"Authorization": f"Bearer {bot.api_key}"}
    listed = (await bot.http.get(f"{bot.url}/api/v1/cycles", headers=headers)).json()["cycles"]
    [cycle] = listed
    await _opens(bot, cycle["report_url"])
    read = (await bot.http.get(cycle["url"], headers=headers)).json()
    await _opens(bot, read["report_url"])

    def published() -> bool:
        comments = [c for c in bot.github.comments.values() if "aac:report" in c.body]
        runs = [r for r in bot.github.check_runs.values() if r.status == "completed"]
        return bool(comments) and bool(runs)

    await wait_for(published, what="the comment and the check run")
    [comment] = [c for c in bot.github.comments.values() if "aac:report" in c.body]
    [run] = [r for r in bot.github.check_runs.values() if r.status == "completed"]
    found = LINK.findall(comment.body) + LINK.findall(str(run.output))
    assert run.details_url is not None
    for url in [*found, run.details_url]:
        await _opens(bot, url)
    assert LINK.findall(comment.body), comment.body
