"""The report page: access rules here; rendering in a real browser in test_report_page_browser."""

from __future__ import annotations

import html
import re
from urllib.parse import urlparse

from bot import cycles
from bot.cycle_report import cycle_context
from bot.history import load_history
from bot.links import signed_report_url
from bot.results.model import TestStatus
from storage import orgs, queue
from storage.models import TestCycle
from tests.bot.api.conftest import ApiHarness
from tests.bot.api.test_cycles_api import CONTEXT, JUNIT


async def make_analysed_cycle(
    api: ApiHarness,
    *,
    sha: str = "a" * 40,
    leak: str | None = None,
    context: dict[str, object] | None = None,
) -> str:
    from bot.analyse import AnalyseCycle

    headers = api.auth()
    body = {**CONTEXT, **(context or {}), "sha": sha}
    cycle = (await api.client.post("/api/v1/cycles", json=body, headers=headers)).json()
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


async def test_a_cycle_re_run_at_its_commit_says_so_not_newer_commit(api: ApiHarness) -> None:
    # A testing node's or manual run (no pipeline): /aac rerun opens its next attempt.
    old_id = await make_analysed_cycle(api, context={"pipeline_id": None})
    async with api.runtime.sessions.begin() as session:
        old = await session.get_one(TestCycle, old_id)
        fresh, created = await cycles.open_attempt(session, old.org_id, cycle_context(old))
        assert created
        fresh_id = fresh.id

    page = await api.client.get(f"/cycles/{old_id}", headers=api.auth())
    assert page.status_code == 200
    card = page.text.split('id="superseded-by">', 1)[1].split("</div>", 1)[0]
    assert ", re-run as attempt 2 at the same commit." in card
    assert "newer commit" not in card
    assert f"/cycles/{fresh_id}?exp=" in card.split('href="', 1)[1]


async def test_page_links_a_self_managed_gitlabs_commit_mr_and_pipeline(api: ApiHarness) -> None:
    async with api.runtime.sessions.begin() as session:
        org = await orgs.get_org(session, "acme")
        await orgs.set_integration(
            session, api.runtime.vault, org, "gitlab", base_url="https://gitlab.example.com"
        )
    pipeline = "https://gitlab.example.com/acme/widgets/-/pipelines/9001"
    context = {"source": "gitlab", "pipeline_url": pipeline}
    cycle_id = await make_analysed_cycle(api, sha="b" * 40, context=context)
    page = await api.client.get(f"/cycles/{cycle_id}", headers=api.auth())
    assert page.status_code == 200
    links = page.text.split('id="links">', 1)[1].split("</div>", 1)[0]
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', links)]
    assert hrefs == [
        f"https://gitlab.example.com/acme/widgets/-/commit/{'b' * 40}",
        "https://gitlab.example.com/acme/widgets/-/merge_requests/42",
        pipeline,
    ]
    assert ">MR !42</a>" in links
