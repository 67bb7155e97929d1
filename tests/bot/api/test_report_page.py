"""The report page: access rules here; rendering in a real browser in test_report_page_browser."""

from __future__ import annotations

import html
from urllib.parse import urlparse

from bot.history import load_history
from bot.links import signed_report_url
from bot.results.model import TestStatus
from storage import queue
from storage.models import TestCycle
from tests.bot.api.conftest import ApiHarness
from tests.bot.api.test_cycles_api import CONTEXT, JUNIT


async def make_analysed_cycle(
    api: ApiHarness, *, sha: str = "a" * 40, leak: str | None = None, **context: str
) -> str:
    from bot.analyse import AnalyseCycle

    headers = api.auth()
    cycle = (
        await api.client.post(
            "/api/v1/cycles", json={**CONTEXT, "sha": sha, **context}, headers=headers
        )
    ).json()
    junit = (
        JUNIT
        if leak is None
        else JUNIT.replace(b"division by zero<", f"division by zero (token {leak})<".encode(), 1)
    )
    await api.client.post(
        cycle["upload_url"], content=junit, headers={**headers, "X-Filename": "junit.xml"}
    )
    await api.client.post(cycle["complete_url"], json={"exit_code": 1}, headers=headers)
    async with api.runtime.sessions.begin() as session:
        [job] = await queue.claim(session, "w", lease_seconds=30, kinds=["analyse_cycle"])
    await AnalyseCycle(api.runtime).run(job)
    return str(cycle["id"])


async def test_page_by_signed_link_or_api_key(api: ApiHarness) -> None:
    cycle_id = await make_analysed_cycle(api)
    url = signed_report_url("http://testserver", api.runtime.vault.keyring, cycle_id)
    path = urlparse(url)
    page = await api.client.get(f"{path.path}?{path.query}")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "ZeroDivisionError" in page.text
    assert 'id="history-chart"' in page.text
    assert "<script" not in page.text
    by_key = await api.client.get(f"/cycles/{cycle_id}", headers=api.auth())
    assert by_key.status_code == 200
    other_org = await api.client.get(f"/cycles/{cycle_id}", headers=api.auth(api.other_key))
    assert other_org.status_code == 404


async def test_wrong_or_expired_signature_is_403(api: ApiHarness) -> None:
    cycle_id = await make_analysed_cycle(api)
    keyring = api.runtime.vault.keyring
    expired = urlparse(signed_report_url("http://t", keyring, cycle_id, ttl=-5))
    assert (await api.client.get(f"{expired.path}?{expired.query}")).status_code == 403
    good = urlparse(signed_report_url("http://t", keyring, cycle_id))
    forged = good.query.replace("sig=", "sig=0")
    response = await api.client.get(f"{good.path}?{forged}")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert (await api.client.get(f"/cycles/{cycle_id}")).status_code == 403


async def test_a_finished_cycle_superseded_by_a_new_push_keeps_its_report(
    api: ApiHarness,
) -> None:
    old_id = await make_analysed_cycle(api)
    new = (
        await api.client.post(
            "/api/v1/cycles",
            json={**CONTEXT, "sha": "f" * 40, "pipeline_id": "9002"},
            headers=api.auth(),
        )
    ).json()

    read = (await api.client.get(f"/api/v1/cycles/{old_id}", headers=api.auth())).json()
    assert read["status"] == "done"
    assert read["superseded_by"] == new["id"]
    assert read["superseded_by_url"] == new["url"]
    assert read["totals"]["failed"] == 1
    assert read["summary"].startswith("1 failed")
    assert (new["superseded_by"], new["superseded_by_url"]) == (None, None)

    page = await api.client.get(f"/cycles/{old_id}", headers=api.auth())
    assert page.status_code == 200
    assert 'id="superseded-by"' in page.text
    link = page.text.split('id="superseded-by"', 1)[1].split('href="', 1)[1].split('"', 1)[0]
    assert f"/cycles/{new['id']}?exp=" in link
    followed = urlparse(html.unescape(link))
    assert (await api.client.get(f"{followed.path}?{followed.query}")).status_code == 200
    assert "ZeroDivisionError" in page.text  # its own results, as before

    # Still history: the next cycles' verdicts and flakiness count its results.
    async with api.runtime.sessions() as session:
        cycle = await session.get(TestCycle, new["id"])
        assert cycle is not None
        history = await load_history(session, cycle, {"tests.test_math::test_div"})
    assert history.recent["tests.test_math::test_div"] == [TestStatus.FAILED]
