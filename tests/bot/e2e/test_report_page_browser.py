"""The report page in a real headless Chromium: it renders, logs no errors, draws the chart."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

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


# A pytest-style multi-line message: the page must keep its lines.
DIFF_JUNIT = FAILING_JUNIT.replace(
    b'message="AssertionError: expected 201, got 500"',
    b'message="AssertionError: assert 500 == 201&#10; +  where 500 = response.status_code"',
)


async def _cycle(
    bot: RunningBot, sha: str, junit: bytes, *, pr: int | None, source: str = "jenkins"
) -> str:
    headers = {"Authorization": f"Bearer {bot.api_key}"}
    body = {
        "source": source,  # jenkins: stored and analysed, published nowhere
        "repository": REPOSITORY,
        "sha": sha,
        "pr": pr,
        "ref": "main" if pr is None else f"refs/pull/{pr}/merge",
        "base_ref": None if pr is None else "main",
        "suite": "unit",
        "pipeline_url": f"https://github.com/{REPOSITORY}/actions/runs/{sha[:3]}",
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


async def _chart_counts(page: Page) -> dict[str, int]:
    return {
        what: await page.locator(f"#history-chart {what}").count()
        for what in ("rect.duration", "circle.pass-rate", "polyline.pass-rate", "text.x-label")
    }


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


async def test_report_page_renders_in_chromium(
    chromium: str, bot: RunningBot, tmp_path: Path
) -> None:
    if "postgresql" in bot.runtime.settings.database_url:
        pytest.skip("rendering does not depend on the engine; run once")
    passing = FAILING_JUNIT.replace(b"<failure", b"<system-out").replace(
        b"</failure>", b"</system-out>"
    )
    # One SCM throughout: history (the base branch's cycles) is kept per source and host.
    first = await _cycle(bot, "0" * 40, passing, pr=None, source="github")
    await _cycle(bot, "1" * 40, passing, pr=None, source="github")
    cycle_id = await _cycle(bot, "f" * 40, DIFF_JUNIT, pr=7, source="github")
    keyring = bot.runtime.vault.keyring
    url = signed_report_url(bot.url, keyring, cycle_id)
    errors: list[str] = []
    profile = tempfile.mkdtemp(prefix="aac-chromium-")
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=FLAGS)
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            # One cycle: a point and a bar, on labelled axes; a green run needs no legend.
            response = await page.goto(signed_report_url(bot.url, keyring, first))
            assert response is not None
            assert response.status == 200
            assert await _chart_counts(page) == {
                "rect.duration": 1,
                "circle.pass-rate": 1,
                "polyline.pass-rate": 0,
                "text.x-label": 1,
            }
            assert await page.locator("#history-chart text.axis-pass").all_text_contents() == [
                "0%",
                "50%",
                "100%",
            ]
            assert await page.locator("#legend").count() == 0
            await page.screenshot(path=str(tmp_path / "one-cycle.png"), full_page=True)

            # Three cycles, the last a PR's failing one.
            response = await page.goto(url)
            assert response is not None
            assert response.status == 200
            assert "2 failed" in (await page.inner_text("h1"))
            assert await page.locator(".verdict.new").count() >= 2
            chart = page.locator("#history-chart")
            box = await chart.bounding_box()
            assert box is not None
            assert box["width"] > 300
            assert await _chart_counts(page) == {
                "rect.duration": 3,
                "circle.pass-rate": 3,
                "polyline.pass-rate": 1,
                "text.x-label": 3,
            }
            labels = await page.locator("#history-chart text.x-label").all_text_contents()
            assert labels == ["0000000", "1111111", "fffffff · this"]
            line = await page.locator("#history-chart polyline.pass-rate").bounding_box()
            assert line is not None
            assert line["width"] > 100  # drawn across the chart, not a point
            # Every badge is explained, visibly.
            legend = page.locator("#legend")
            assert await legend.is_visible()
            for label in ("new", "also on base", "flaky", "unknown"):
                assert await legend.locator("dt", has_text=label).count() >= 1
            # Links a person follows from here.
            links = {
                await a.inner_text(): await a.get_attribute("href")
                for a in await page.locator("#links a").all()
            }
            assert links == {
                "fffffff": f"https://github.com/{REPOSITORY}/commit/{'f' * 40}",
                "PR #7": f"https://github.com/{REPOSITORY}/pull/7",
                "pipeline": f"https://github.com/{REPOSITORY}/actions/runs/fff",
            }
            # The multi-line message keeps its lines; the heading is a real message.
            message = await page.locator("pre.message").first.inner_text()
            assert message.split("\n") == [
                "AssertionError: assert 500 == 201",
                " +  where 500 = response.status_code",
            ]
            titles = " ".join(await page.locator(".cluster-title").all_inner_texts())
            assert "<n>" not in titles
            assert "assert 500 == 201" in titles
            await page.screenshot(path=str(tmp_path / "three-cycles.png"), full_page=True)
            # The report page itself logged nothing. (The error page below makes Chromium
            # ask for /favicon.ico, which is a 404 by design.)
            assert errors == []
            forbidden = await page.goto(url.replace("sig=", "sig=00"))
            assert forbidden is not None
            assert forbidden.status == 403
            await browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
