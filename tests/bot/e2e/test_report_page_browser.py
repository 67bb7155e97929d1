"""The report page in a real headless Chromium: it renders, logs no errors, draws the chart."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from bot.links import signed_report_url
from tests.bot.e2e.conftest import REPOSITORY, RunningBot, wait_for
from tests.bot.e2e.test_github_flow import FAILING_JUNIT

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = "`apt-get install chromium`, or `python -m playwright install chromium`"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def _cycle(bot: RunningBot, sha: str, junit: bytes, *, pr: int | None) -> str:
    headers = {"Authorization": f"Bearer {bot.api_key}"}
    body = {
        "source": "jenkins",  # stored and analysed, published nowhere
        "repository": REPOSITORY,
        "sha": sha,
        "pr": pr,
        "ref": "main" if pr is None else f"refs/pull/{pr}/merge",
        "base_ref": None if pr is None else "main",
        "suite": "unit",
    }
    cycle = (await bot.http.post(f"{bot.url}/api/v1/cycles", json=body, headers=headers)).json()
    await bot.http.post(
        cycle["upload_url"], content=junit, headers={**headers, "X-Filename": "junit.xml"}
    )
    await bot.http.post(cycle["complete_url"], json={}, headers=headers)

    async def analysed() -> bool:
        read = await bot.http.get(cycle["url"], headers=headers)
        return bool(read.json()["status"] == "done")

    await wait_for(analysed, what="analysis")
    return str(cycle["id"])


async def _playwright_chromium() -> str | None:
    """The Chromium `playwright install chromium` downloaded, if it did."""
    async with async_playwright() as pw:
        path = pw.chromium.executable_path
    return path if path and Path(path).exists() else None


@pytest.fixture
async def chromium() -> str:
    """A Chromium to drive; skipped with how to enable it, or (CI=true) a failure."""
    found = next((p for p in map(shutil.which, BROWSERS) if p), None)
    found = found or await _playwright_chromium()
    if found is not None:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(
            f"no Chromium found, and under CI=true the report page must be tested: {INSTALL}"
        )
    pytest.skip(f"no Chromium found, so the report page browser test is skipped: {INSTALL}")


async def test_report_page_renders_in_chromium(chromium: str, bot: RunningBot) -> None:
    if "postgresql" in bot.runtime.settings.database_url:
        pytest.skip("rendering does not depend on the engine; run once")
    passing = FAILING_JUNIT.replace(b"<failure", b"<system-out").replace(
        b"</failure>", b"</system-out>"
    )
    for n in range(3):
        await _cycle(bot, f"{n}" * 40, passing, pr=None)
    cycle_id = await _cycle(bot, "f" * 40, FAILING_JUNIT, pr=7)
    url = signed_report_url(bot.url, bot.runtime.vault.keyring, cycle_id)
    errors: list[str] = []
    profile = tempfile.mkdtemp(prefix="aac-chromium-")
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=FLAGS)
            page = await browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            response = await page.goto(url)
            assert response is not None
            assert response.status == 200
            assert "2 failed" in (await page.inner_text("h1"))
            assert await page.locator(".verdict.new").count() == 2
            chart = page.locator("#history-chart")
            box = await chart.bounding_box()
            assert box is not None
            assert box["width"] > 300
            assert await page.locator("#history-chart rect.duration").count() == 4
            line = await page.locator("#history-chart polyline.pass-rate").bounding_box()
            assert line is not None
            assert line["width"] > 100  # drawn across the chart, not a point
            # The report page itself logged nothing. (The error page below makes Chromium
            # ask for /favicon.ico, which is a 404 by design.)
            assert errors == []
            forbidden = await page.goto(url.replace("sig=", "sig=00"))
            assert forbidden is not None
            assert forbidden.status == 403
            await browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
