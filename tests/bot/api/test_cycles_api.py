from __future__ import annotations

import gzip
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.analyse import AnalyseCycle
from bot.api.openapi import SPEC
from bot.app import create_app
from storage import queue
from storage.models import Job, TestResultRow
from tests.bot.api.conftest import ApiHarness

CONTEXT = {
    "source": "github",
    "repository": "acme/widgets",
    "sha": "0123456789abcdef0123456789abcdef01234567",
    "pr": 42,
    "ref": "refs/pull/42/merge",
    "base_ref": "main",
    "pipeline_id": "9001",
    "pipeline_url": "https://github.com/acme/widgets/actions/runs/9001",
    "run_attempt": 1,
    "suite": "unit",
    "trigger": "pull_request",
}

JUNIT = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testsuite name="pytest" tests="3" failures="1" errors="0" skipped="1" time="0.5">
    <testcase classname="tests.test_math" name="test_add" file="tests/test_math.py" line="3"
              time="0.1"/>
    <testcase classname="tests.test_math" name="test_div" file="tests/test_math.py" line="9"
              time="0.2">
      <failure message="ZeroDivisionError: division by zero">Traceback (most recent call last):
  File "tests/test_math.py", line 10, in test_div
    1 / 0
ZeroDivisionError: division by zero</failure>
    </testcase>
    <testcase classname="tests.test_math" name="test_skip" time="0.0">
      <skipped message="later"/>
    </testcase>
  </testsuite>
</testsuites>
"""


async def _create(api: ApiHarness, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return await api.client.post(
        "/api/v1/cycles", json=body or CONTEXT, headers={**api.auth(), **headers}
    )


async def _upload(
    api: ApiHarness, cycle_id: str, data: bytes, name: str = "junit.xml", **h: str
) -> Any:
    return await api.client.post(
        f"/api/v1/cycles/{cycle_id}/results",
        content=data,
        headers={**api.auth(), "X-Filename": name, "Content-Type": "application/octet-stream", **h},
    )


async def _count_results(api: ApiHarness) -> int:
    async with api.runtime.sessions() as session:
        return int(
            (await session.execute(select(func.count()).select_from(TestResultRow))).scalar_one()
        )


async def test_create_is_idempotent_by_natural_key_and_header(api: ApiHarness) -> None:
    first = await _create(api)
    assert first.status_code == 201
    body = first.json()
    assert body["status"] == "collecting"
    assert body["upload_url"] == f"http://testserver/api/v1/cycles/{body['id']}/results"
    assert body["pr"] == 42
    assert body["suite"] == "unit"
    assert body["pipeline_id"] == "9001"
    again = await _create(api)
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    # A retried request with the same Idempotency-Key returns the first cycle even if the
    # body changed (e.g. the client re-derived a field).
    keyed = await _create(api, {**CONTEXT, "run_attempt": 2}, **{"Idempotency-Key": "run-9001-1"})
    assert keyed.status_code == 201
    replay = await _create(api, {**CONTEXT, "run_attempt": 3}, **{"Idempotency-Key": "run-9001-1"})
    assert replay.status_code == 200
    assert replay.json()["id"] == keyed.json()["id"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({k: v for k, v in CONTEXT.items() if k != "sha"}, 422, "invalid_field", "sha"),
        ({**CONTEXT, "sha": "not-hex!"}, 422, "invalid_field", "sha"),
        ({**CONTEXT, "pr": 0}, 422, "invalid_field", "pr"),
        ({**CONTEXT, "surprise": 1}, 422, "invalid_field", "surprise"),
        ({**CONTEXT, "pipeline_url": "javascript:alert(1)"}, 422, "invalid_field", "pipeline_url"),
    ],
)
async def test_create_rejects_bad_context(
    api: ApiHarness, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    response = await _create(api, body)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["field"] == field


async def test_invalid_json_and_missing_or_wrong_keys(api: ApiHarness) -> None:
    bad = await api.client.post("/api/v1/cycles", content=b"{nope", headers=api.auth())
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_json"
    anonymous = await api.client.post("/api/v1/cycles", json=CONTEXT)
    assert anonymous.status_code == 401
    assert "Bearer" in anonymous.json()["detail"]
    wrong = await api.client.post("/api/v1/cycles", json=CONTEXT, headers=api.auth("aac_0000_x"))
    assert wrong.status_code == 401
    async with api.runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Job))).scalar_one() == 0


def _variant(n: int) -> bytes:
    """JUNIT with another suite name: other content, the same three tests' outcomes."""
    return JUNIT.replace(b'name="pytest"', f'name="pytest-{n}"'.encode())


async def test_upload_raw_gzip_and_multipart_accumulate_totals(api: ApiHarness) -> None:
    cycle = (await _create(api)).json()
    raw = await _upload(api, cycle["id"], JUNIT)
    assert raw.status_code == 200, raw.text
    assert raw.json()["files"] == [
        {"name": "junit.xml", "format": "junit", "tests": 3, "replaced": False}
    ]
    zipped = await _upload(api, cycle["id"], gzip.compress(_variant(1)), "junit.xml.gz")
    assert zipped.status_code == 200, zipped.text
    multi = await api.client.post(
        cycle["upload_url"],
        files=[("file", ("a.xml", _variant(2))), ("file", ("b.xml", _variant(3)))],
        headers=api.auth(),
    )
    assert multi.status_code == 200, multi.text
    assert [f["name"] for f in multi.json()["files"]] == ["a.xml", "b.xml"]
    totals = multi.json()["totals"]
    assert totals == {"total": 12, "passed": 4, "failed": 4, "errored": 0, "skipped": 4, "flaky": 0}
    assert await _count_results(api) == 12
    read = await api.client.get(cycle["url"], headers=api.auth())
    assert read.json()["totals"] == totals


@pytest.mark.parametrize(
    ("data", "code", "line"),
    [
        (JUNIT[:300], "invalid_xml", True),
        (b"\xff\xfe<testsuites>\xc3\x28</testsuites>", None, False),
        (b"<html><body>not results</body></html>", "unknown_format", False),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b"<testsuite><testcase name='&e;'/></testsuite>",
            "dtd_forbidden",
            False,
        ),
    ],
)
async def test_rejected_upload_stores_nothing_and_keeps_earlier_results(
    api: ApiHarness, data: bytes, code: str | None, line: bool
) -> None:
    cycle = (await _create(api)).json()
    assert (await _upload(api, cycle["id"], JUNIT, "good.xml")).status_code == 200
    response = await api.client.post(
        cycle["upload_url"],
        files=[("file", ("fine.xml", JUNIT)), ("file", ("reports/bad.xml", data))],
        headers=api.auth(),
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["file"] == "reports/bad.xml"
    assert "reports/bad.xml" in body["detail"]
    if code:
        assert body["error"] == code
    if line:
        assert isinstance(body["line"], int)
    assert "root:" not in response.text  # nothing from /etc/passwd
    assert await _count_results(api) == 3
    read = await api.client.get(cycle["url"], headers=api.auth())
    assert read.json()["totals"]["total"] == 3
    assert [f["name"] for f in read.json()["files"]] == ["good.xml"]


async def test_oversized_upload_is_413(api: ApiHarness) -> None:
    cycle = (await _create(api)).json()
    big = b"<testsuite>" + b"<testcase name='x'/>" * 200_000 + b"</testsuite>"
    settings = api.runtime.settings.model_copy(update={"max_result_file_bytes": 1024 * 1024})
    api.runtime.settings = settings
    response = await _upload(api, cycle["id"], big, "huge.xml")
    assert response.status_code == 413
    assert response.json()["file"] == "huge.xml"
    assert await _count_results(api) == 0


async def test_tenant_isolation(api: ApiHarness) -> None:
    cycle = (await _create(api)).json()
    other = api.auth(api.other_key)
    for method, url, kwargs in [
        ("GET", cycle["url"], {}),
        ("POST", cycle["upload_url"], {"content": JUNIT}),
        ("POST", cycle["complete_url"], {"json": {}}),
    ]:
        response = await api.client.request(method, url, headers=other, **kwargs)
        assert response.status_code == 404, (method, url)
        assert response.json()["error"] == "cycle_not_found"
    listed = await api.client.get("/api/v1/cycles", headers=other)
    assert listed.json() == {"cycles": []}
    # The same natural key in another organisation is a different cycle.
    theirs = await api.client.post("/api/v1/cycles", json=CONTEXT, headers=other)
    assert theirs.status_code == 201
    assert theirs.json()["id"] != cycle["id"]
    assert await _count_results(api) == 0


async def test_complete_queues_analysis_once_and_closes_the_cycle(api: ApiHarness) -> None:
    cycle = (await _create(api)).json()
    await _upload(api, cycle["id"], JUNIT)
    done = await api.client.post(cycle["complete_url"], json={"exit_code": 1}, headers=api.auth())
    assert done.status_code == 202
    assert done.json()["status"] == "analysing"
    assert done.json()["outcome"] == "failure"
    late = await _upload(api, cycle["id"], JUNIT)
    assert late.status_code == 409
    assert late.json()["error"] == "cycle_closed"
    twice = await api.client.post(cycle["complete_url"], json={}, headers=api.auth())
    assert twice.status_code == 409
    async with api.runtime.sessions.begin() as session:
        [job] = await queue.claim(session, "w", lease_seconds=30)
    assert job.payload == {"cycle_id": cycle["id"]}
    await AnalyseCycle(api.runtime).run(job)
    read = (await api.client.get(cycle["url"], headers=api.auth())).json()
    assert read["status"] == "done"
    assert read["summary"].startswith("1 failed")


async def test_no_results_and_a_failed_run_is_an_infrastructure_error(api: ApiHarness) -> None:
    cycle = (await _create(api)).json()
    await api.client.post(cycle["complete_url"], json={"outcome": "failure"}, headers=api.auth())
    async with api.runtime.sessions.begin() as session:
        [job] = await queue.claim(session, "w", lease_seconds=30)
    await AnalyseCycle(api.runtime).run(job)
    read = (await api.client.get(cycle["url"], headers=api.auth())).json()
    assert read["status"] == "infra_error"
    assert read["infrastructure_error"] is True
    assert "0 tests passed" not in read["summary"]
    assert read["summary"].startswith("Infrastructure error")


async def test_a_ci_reports_a_timeout_and_its_limit(api: ApiHarness) -> None:
    cycle = (await _create(api)).json()
    assert (await _upload(api, cycle["id"], JUNIT)).status_code == 200
    done = await api.client.post(
        cycle["complete_url"],
        json={"outcome": "timed_out", "timeout_seconds": 900},
        headers=api.auth(),
    )
    assert done.status_code == 202, done.text
    assert (done.json()["outcome"], done.json()["timeout_seconds"]) == ("timed_out", 900)
    async with api.runtime.sessions.begin() as session:
        [job] = await queue.claim(session, "w", lease_seconds=30)
    await AnalyseCycle(api.runtime).run(job)
    read = (await api.client.get(cycle["url"], headers=api.auth())).json()
    assert read["status"] == "done"
    assert read["summary"].startswith("Timed out after 900 s · 1 failed, 1 passed")


async def test_a_timeout_limit_needs_the_timed_out_outcome(api: ApiHarness) -> None:
    cycle = (await _create(api)).json()
    refused = await api.client.post(
        cycle["complete_url"],
        json={"outcome": "failure", "timeout_seconds": 900},
        headers=api.auth(),
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "timeout_seconds"
    assert "only for outcome timed_out" in refused.json()["detail"]


async def test_new_push_supersedes_the_pending_cycle_of_the_pr(api: ApiHarness) -> None:
    old = (await _create(api)).json()
    new = (await _create(api, {**CONTEXT, "sha": "f" * 40, "pipeline_id": "9002"})).json()
    read = (await api.client.get(old["url"], headers=api.auth())).json()
    assert read["status"] == "superseded"
    assert read["superseded_by"] == new["id"]


async def test_list_filters(api: ApiHarness) -> None:
    await _create(api)
    await _create(api, {**CONTEXT, "pr": 7, "sha": "a" * 40})
    listed = await api.client.get("/api/v1/cycles?repository=acme/widgets&pr=7", headers=api.auth())
    assert [c["pr"] for c in listed.json()["cycles"]] == [7]
    bad = await api.client.get("/api/v1/cycles?pr=seven", headers=api.auth())
    assert bad.status_code == 422


async def test_rate_limit_answers_429_with_retry_after(api: ApiHarness) -> None:
    from bot.api.ratelimit import RateLimiter

    app = create_app(api.runtime)
    app.state.rate_limiter = RateLimiter(3)
    import httpx

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        codes = [
            (await client.get("/api/v1/cycles", headers=api.auth())).status_code for _ in range(4)
        ]
        limited = await client.get("/api/v1/cycles", headers=api.auth())
        # Another organisation has its own budget.
        other = await client.get("/api/v1/cycles", headers=api.auth(api.other_key))
    assert codes == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"] == "rate_limited"
    assert other.status_code == 200


def test_ratelimiter_refills() -> None:
    from bot.api.ratelimit import RateLimiter

    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert all(limiter.acquire("o") is None for _ in range(60))
    assert limiter.acquire("o") == 1
    now[0] += 1.0
    assert limiter.acquire("o") is None


async def test_openapi_describes_exactly_the_served_api(api: ApiHarness) -> None:
    served = await api.client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert served.json() == SPEC
    app = create_app(api.runtime)
    routes = set()
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/api/"):
            for method in getattr(route, "methods", set()) - {"HEAD"}:
                routes.add((path, method.lower()))
    documented = {(p, m) for p, ops in SPEC["paths"].items() for m in ops}
    assert routes == documented


async def test_health_and_readiness(api: ApiHarness) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    unknown = await api.client.get("/nope")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"


async def test_upload_says_which_tests_were_counted_from_suite_attributes(
    api: ApiHarness,
) -> None:
    cycle = (await _create(api)).json()
    data = b'<testsuites><testsuite name="e2e" tests="4" failures="1"/></testsuites>'
    response = await _upload(api, cycle["id"], data)
    assert response.status_code == 200, response.text
    assert response.json()["files"] == [
        {
            "name": "junit.xml",
            "format": "junit",
            "tests": 4,
            "replaced": False,
            "counted_from_attributes": 4,
        }
    ]
    assert response.json()["totals"]["failed"] == 1
