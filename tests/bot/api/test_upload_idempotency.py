"""A repeated upload replaces the earlier one: by the client's key, or by the same content."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

from sqlalchemy import func, select

from storage.models import CycleUpload, TestResultRow
from tests.bot.api.conftest import ApiHarness
from tests.bot.api.test_cycles_api import CONTEXT


def _junit(tests: int, suite: str = "unit") -> bytes:
    cases = "".join(
        f'<testcase classname="t.{suite}" name="test_{n}" time="0.1"/>' for n in range(tests)
    )
    return f'<testsuite name="{suite}" tests="{tests}">{cases}</testsuite>'.encode()


FIVE = _junit(5)


async def _cycle(api: ApiHarness) -> dict[str, Any]:
    response = await api.client.post("/api/v1/cycles", json=CONTEXT, headers=api.auth())
    body: dict[str, Any] = response.json()
    return body


async def _post(api: ApiHarness, cycle: dict[str, Any], data: bytes, **headers: str) -> Any:
    response = await api.client.post(
        cycle["upload_url"],
        content=data,
        headers={**api.auth(), "X-Filename": "junit.xml", **headers},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _stored(api: ApiHarness) -> tuple[int, int]:
    """(result rows, upload rows) in the database."""
    async with api.runtime.sessions() as session:
        rows = (await session.execute(select(func.count()).select_from(TestResultRow))).scalar()
        uploads = (await session.execute(select(func.count()).select_from(CycleUpload))).scalar()
    return int(rows or 0), int(uploads or 0)


async def test_three_uploads_of_one_file_count_its_tests_once(api: ApiHarness) -> None:
    cycle = await _cycle(api)
    answers = [await _post(api, cycle, FIVE) for _ in range(3)]
    assert [a["files"][0]["replaced"] for a in answers] == [False, True, True]
    assert [a["totals"]["total"] for a in answers] == [5, 5, 5]
    assert await _stored(api) == (5, 1)
    read = (await api.client.get(cycle["url"], headers=api.auth())).json()
    assert read["totals"] == {
        "total": 5,
        "passed": 5,
        "failed": 0,
        "errored": 0,
        "skipped": 0,
        "flaky": 0,
    }
    assert [f["name"] for f in read["files"]] == ["junit.xml"]


async def test_same_content_gzipped_or_in_a_multipart_is_the_same_file(api: ApiHarness) -> None:
    cycle = await _cycle(api)
    await _post(api, cycle, FIVE)
    zipped = await _post(api, cycle, gzip.compress(FIVE, mtime=123), **{"X-Filename": "j.xml.gz"})
    assert zipped["files"][0]["replaced"] is True
    multi = await api.client.post(
        cycle["upload_url"], files=[("file", ("again.xml", FIVE))], headers=api.auth()
    )
    assert multi.status_code == 200, multi.text
    assert multi.json()["files"][0]["replaced"] is True
    assert multi.json()["totals"]["total"] == 5
    assert await _stored(api) == (5, 1)


async def test_the_same_key_replaces_even_when_the_content_changed(api: ApiHarness) -> None:
    cycle = await _cycle(api)
    await _post(api, cycle, FIVE, **{"Idempotency-Key": "job-7:reports/junit.xml"})
    second = await _post(api, cycle, _junit(3), **{"Idempotency-Key": "job-7:reports/junit.xml"})
    assert second["files"][0]["replaced"] is True
    assert second["totals"]["total"] == 3
    assert await _stored(api) == (3, 1)


async def test_different_files_still_add_up(api: ApiHarness) -> None:
    cycle = await _cycle(api)
    await _post(api, cycle, FIVE, **{"Idempotency-Key": "a"})
    both = await _post(api, cycle, _junit(3, "other"), **{"Idempotency-Key": "b"})
    assert both["files"][0]["replaced"] is False
    assert both["totals"]["total"] == 8
    assert await _stored(api) == (8, 2)


async def test_an_overlong_key_is_refused_and_nothing_stored(api: ApiHarness) -> None:
    cycle = await _cycle(api)
    response = await api.client.post(
        cycle["upload_url"],
        content=FIVE,
        headers={**api.auth(), "Idempotency-Key": "k" * 201},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_header"
    assert await _stored(api) == (0, 0)


async def test_concurrent_repeats_of_one_file_count_it_once(api: ApiHarness) -> None:
    cycle = await _cycle(api)
    answers = await asyncio.gather(*(_post(api, cycle, FIVE) for _ in range(4)))
    assert sorted(a["files"][0]["replaced"] for a in answers) == [False, True, True, True]
    read = (await api.client.get(cycle["url"], headers=api.auth())).json()
    assert read["totals"]["total"] == 5
    assert await _stored(api) == (5, 1)


async def test_concurrent_different_files_lose_no_counts(api: ApiHarness) -> None:
    cycle = await _cycle(api)
    files = [_junit(n + 1, f"s{n}") for n in range(4)]
    await asyncio.gather(*(_post(api, cycle, data) for data in files))
    read = (await api.client.get(cycle["url"], headers=api.auth())).json()
    assert read["totals"]["total"] == 1 + 2 + 3 + 4
    assert sorted(f["tests"] for f in read["files"]) == [1, 2, 3, 4]
    assert await _stored(api) == (10, 4)
