"""summarise() driving litellm for real against the loopback fake OpenAI server."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.analysis.llm import (
    NOTE_UNAVAILABLE,
    UNGROUNDED_CONFIDENCE_CAP,
    InMemorySummaryCache,
    LlmConfig,
    LlmOutcome,
    OutcomeReason,
    cache_key,
    summarise,
)
from bot.analysis.model import ClusterExplanation, FailureCluster, LlmSummary
from bot.analysis.prompt import build_prompt
from bot.analysis.redact import Redactor
from bot.results.model import TestCaseResult, TestStatus
from tests.fakes.llm import (
    INJECTION_ECHO,
    LEAKED_TOKEN,
    Behaviour,
    FakeLlmServer,
    running_fake_llm,
)

ORG_SECRET = "org-token-value-5f2a9c"
API_KEY = "sk-test"
TEST_OUTPUT_TOKEN = "ghp_" + "T" * 36


@pytest.fixture
def fake() -> Iterator[FakeLlmServer]:
    with running_fake_llm(slow_seconds=3.0) as server:
        yield server


def config(fake: FakeLlmServer, **overrides: Any) -> LlmConfig:
    values: dict[str, Any] = {
        "model": "openai/fake-model",
        "api_base": fake.base_url,
        "api_key": API_KEY,
        "timeout": 2.0,
    }
    values.update(overrides)
    return LlmConfig(**values)


def cluster(index: int, *, message: str | None = None) -> FailureCluster:
    test = TestCaseResult(
        name=f"test_checkout_{index}",
        classname="tests.test_orders",
        status=TestStatus.FAILED,
        message=message or f"ConnectionRefusedError: db-{index}:5432 refused the connection",
        failure_type="ConnectionRefusedError",
        stack_trace=(
            "Traceback (most recent call last):\n"
            '  File "/repo/app/db.py", line 20, in connect\n'
            "    sock.connect(addr)\n"
            "ConnectionRefusedError: [Errno 111] Connection refused"
        ),
        stdout_tail=f"INFO boot\nERROR cannot reach database with password={ORG_SECRET}\n",
        stderr_tail=f"WARN using {TEST_OUTPUT_TOKEN}\n",
    )
    return FailureCluster(
        signature=f"sig-{index:03d}",
        exception_type="ConnectionRefusedError",
        message_pattern="db-<n>:<n> refused the connection",
        top_frames=["app/db.py:connect"],
        tests=[test],
    )


async def run(
    fake: FakeLlmServer,
    clusters: list[FailureCluster] | None = None,
    *,
    cache: InMemorySummaryCache | None = None,
    log_tail: str | None = None,
    **overrides: Any,
) -> LlmOutcome:
    return await summarise(
        [cluster(1), cluster(2)] if clusters is None else clusters,
        log_tail=log_tail,
        config=config(fake, **overrides),
        redactor=Redactor([ORG_SECRET]),
        cache=cache if cache is not None else InMemorySummaryCache(),
        allowed_link_hosts={"github.com"},
    )


async def test_valid_answer_becomes_a_grounded_summary(fake: FakeLlmServer) -> None:
    outcome = await run(fake)
    assert outcome.reason is OutcomeReason.OK
    assert outcome.note is None
    assert outcome.requests == 1
    summary = outcome.summary
    assert summary is not None
    assert summary.summary == "2 root causes found."
    assert summary.model == "openai/fake-model"
    assert summary.prompt_tokens == 1000  # the fake's usage numbers came through
    assert [c.signature for c in summary.clusters] == ["sig-001", "sig-002"]
    assert summary.clusters[0].evidence.startswith("ConnectionRefusedError: db-1:5432")
    assert summary.clusters[0].confidence == pytest.approx(0.8)


async def test_prompt_is_redacted_before_it_reaches_the_server(fake: FakeLlmServer) -> None:
    log = f"ERROR deploy failed: AKIAIOSFODNN7EXAMPLE {ORG_SECRET}\n"
    await run(fake, log_tail=log)
    assert len(fake.requests) == 1
    raw_body = json.dumps(fake.requests[0].body)
    assert ORG_SECRET not in raw_body
    assert TEST_OUTPUT_TOKEN not in raw_body
    assert "AKIAIOSFODNN7EXAMPLE" not in raw_body
    assert "[REDACTED" in raw_body
    assert fake.requests[0].body["model"] == "fake-model"
    assert fake.requests[0].headers.get("authorization") == f"Bearer {API_KEY}"


async def test_junk_is_retried_once_then_accepted(fake: FakeLlmServer) -> None:
    fake.script(Behaviour.JUNK)
    outcome = await run(fake)
    assert outcome.reason is OutcomeReason.OK
    assert outcome.requests == 2
    assert "previous answer was not a valid JSON" in fake.requests[1].text


@pytest.mark.parametrize("bad", [Behaviour.JUNK, Behaviour.WRONG_SHAPE])
async def test_invalid_twice_gives_up_with_a_neutral_note(
    fake: FakeLlmServer, bad: Behaviour
) -> None:
    fake.script(bad, bad, Behaviour.VALID)
    outcome = await run(fake, fallback_models=("openai/fake-backup",))
    assert outcome.summary is None
    assert outcome.reason is OutcomeReason.INVALID_OUTPUT
    assert outcome.note == NOTE_UNAVAILABLE
    assert len(fake.requests) == 2  # no third call, not even to the fallback


async def test_timeout_gives_neutral_note(fake: FakeLlmServer) -> None:
    fake.script(Behaviour.SLOW)
    started = time.perf_counter()
    outcome = await run(fake, timeout=0.5)
    assert time.perf_counter() - started < 2.5
    assert outcome.summary is None
    assert outcome.reason is OutcomeReason.TIMEOUT
    assert outcome.note == NOTE_UNAVAILABLE


async def test_fallback_model_is_used_when_the_first_fails(fake: FakeLlmServer) -> None:
    fake.script(Behaviour.ERROR_500, model="fake-model")
    outcome = await run(fake, fallback_models=("openai/fake-backup",))
    assert outcome.reason is OutcomeReason.OK
    assert outcome.summary is not None
    assert outcome.summary.model == "openai/fake-backup"
    assert [r.model for r in fake.requests] == ["fake-model", "fake-backup"]


async def test_fallback_after_a_timeout(fake: FakeLlmServer) -> None:
    fake.script(Behaviour.SLOW, model="fake-model")
    outcome = await run(fake, timeout=0.5, fallback_models=("openai/fake-backup",))
    assert outcome.summary is not None
    assert outcome.summary.model == "openai/fake-backup"


async def test_errors_never_leak_into_the_outcome_or_logs(
    fake: FakeLlmServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(Behaviour.ERROR_500, Behaviour.ERROR_500)
    with caplog.at_level(logging.DEBUG, logger="bot.analysis.llm"):
        outcome = await run(fake, fallback_models=("openai/fake-backup",))
    assert outcome.summary is None
    assert outcome.reason is OutcomeReason.ERROR
    assert outcome.note == NOTE_UNAVAILABLE
    assert outcome.requests == 2
    assert "internal error" not in repr(outcome)
    assert "InternalServerError" in caplog.text  # the class only
    assert "internal error" not in caplog.text
    assert API_KEY not in caplog.text


async def test_no_clusters_means_no_call(fake: FakeLlmServer) -> None:
    outcome = await run(fake, [])
    assert outcome.summary is None
    assert outcome.reason is OutcomeReason.NO_CLUSTERS
    assert outcome.note
    assert fake.requests == []


async def test_no_model_means_no_call(fake: FakeLlmServer) -> None:
    outcome = await run(fake, model=None)
    assert outcome.summary is None
    assert outcome.reason is OutcomeReason.NO_MODEL
    assert outcome.note
    assert fake.requests == []


async def test_budget_too_small_means_no_call(fake: FakeLlmServer) -> None:
    outcome = await run(fake, token_budget=100)
    assert outcome.reason is OutcomeReason.BUDGET_EXHAUSTED
    assert outcome.note == NOTE_UNAVAILABLE
    assert fake.requests == []


async def test_cache_hit_costs_no_request(fake: FakeLlmServer) -> None:
    cache = InMemorySummaryCache()
    first = await run(fake, cache=cache)
    again = await run(fake, [cluster(2), cluster(1)], cache=cache)  # same set, other order
    assert first.reason is OutcomeReason.OK
    assert again.reason is OutcomeReason.CACHED
    assert again.summary == first.summary
    assert len(fake.requests) == 1
    other_model = await run(fake, cache=cache, model="openai/other-model")
    assert other_model.reason is OutcomeReason.OK
    assert len(fake.requests) == 2


async def test_failed_calls_are_not_cached(fake: FakeLlmServer) -> None:
    cache = InMemorySummaryCache()
    fake.script(Behaviour.ERROR_500)
    await run(fake, cache=cache)
    assert len(cache) == 0
    assert (await run(fake, cache=cache)).reason is OutcomeReason.OK


def test_cache_key_scopes_tenants_models_evidence_and_order() -> None:
    base = cache_key(["a", "b"], "m", evidence=["x", "y"])
    assert cache_key(["b", "a", "a"], "m", evidence=["y", "x"]) == base
    assert cache_key(["a", "b"], "m2", evidence=["x", "y"]) != base
    assert cache_key(["a", "b"], "m", scope="org-2", evidence=["x", "y"]) != base
    assert cache_key(["a", "b"], "m", evidence=["x", "z"]) != base


async def test_same_signatures_with_other_evidence_ask_again(fake: FakeLlmServer) -> None:
    """A signature masks the numbers and names in a message: another cycle's failure with the
    same signature but other details gets its own answer, quoting its own data."""
    cache = InMemorySummaryCache()
    first = await run(fake, [cluster(1)], cache=cache)
    other = cluster(1, message="ConnectionRefusedError: db-7:6432 refused the connection")
    second = await run(fake, [other], cache=cache)
    assert first.reason is OutcomeReason.OK
    assert second.reason is OutcomeReason.OK
    assert len(fake.requests) == 2
    assert second.summary is not None
    assert second.summary.clusters[0].evidence.startswith("ConnectionRefusedError: db-7:6432")


async def test_a_cached_answer_is_held_to_this_cycles_data(fake: FakeLlmServer) -> None:
    """Whatever the cache holds (a shared table, an older writer), its quotes are checked
    against the data of the cycle it is used for, and clusters not asked about are dropped."""
    clusters = [cluster(1)]
    prompt = build_prompt(clusters, redactor=Redactor([ORG_SECRET]))
    key = cache_key(["sig-001"], "openai/fake-model", evidence=prompt.evidence)
    cache = InMemorySummaryCache()
    foreign = "ValueError: customer 4711 of globex has no invoice"
    await cache.put(
        key,
        LlmSummary(
            summary="One root cause.",
            clusters=[
                ClusterExplanation("sig-001", "cause", foreign, "fix", 0.9),
                ClusterExplanation("sig-999", "cause", "db-1:5432 refused", "fix", 0.9),
            ],
        ),
    )
    outcome = await run(fake, clusters, cache=cache)
    assert outcome.reason is OutcomeReason.CACHED
    assert fake.requests == []
    assert outcome.summary is not None
    [explanation] = outcome.summary.clusters
    assert explanation.signature == "sig-001"
    assert explanation.evidence == ""
    assert explanation.confidence <= UNGROUNDED_CONFIDENCE_CAP


async def test_in_memory_cache_is_bounded() -> None:
    cache = InMemorySummaryCache(max_entries=2)
    for key in ("a", "b", "c"):
        await cache.put(key, LlmSummary(summary=key))
    assert await cache.get("a") is None
    assert (await cache.get("c")) == LlmSummary(summary="c")


async def test_hostile_answer_is_sanitised(fake: FakeLlmServer) -> None:
    fake.script(Behaviour.HOSTILE)
    outcome = await run(fake)
    assert outcome.summary is not None
    texts = [outcome.summary.summary] + [
        text
        for c in outcome.summary.clusters
        for text in (c.likely_cause, c.evidence, c.suggested_fix)
    ]
    everything = "\n".join(texts)
    assert LEAKED_TOKEN not in everything
    assert INJECTION_ECHO not in everything
    assert "<img" not in everything
    assert "<script" not in everything
    assert "@octocat" not in everything
    assert "@org/security-team" not in everything
    assert "](https://evil.example" not in everything
    assert "![" not in everything
    # The explanation that repeated the planted instruction is dropped, the other is kept.
    assert [c.signature for c in outcome.summary.clusters] == ["sig-002"]


async def test_answer_echoing_an_injection_in_its_summary_is_rejected(
    fake: FakeLlmServer,
) -> None:
    fake.script(Behaviour.INJECTED, Behaviour.INJECTED)
    outcome = await run(fake)
    assert outcome.summary is None
    assert outcome.reason is OutcomeReason.INVALID_OUTPUT
    assert outcome.requests == 2


async def test_invented_clusters_and_ungrounded_evidence_are_not_trusted(
    fake: FakeLlmServer,
) -> None:
    def answer(body: dict[str, Any]) -> str:
        return (
            "```json\n"
            + json.dumps(
                {
                    "summary": "Database unreachable.",
                    "clusters": [
                        {
                            "signature": "C1",
                            "likely_cause": "db down",
                            "evidence": "the moon is made of cheese",
                            "suggested_fix": "restart db",
                            "confidence": 0.95,
                        },
                        {
                            "signature": "sig-002",
                            "likely_cause": "db down",
                            "evidence": "Connection refused ... db-2:5432",
                            "suggested_fix": "restart db",
                            "confidence": 7,
                        },
                        {
                            "signature": "sig-999",
                            "likely_cause": "made up",
                            "evidence": "",
                            "suggested_fix": "",
                            "confidence": 1,
                        },
                    ],
                }
            )
            + "\n```"
        )

    fake.answer = answer
    outcome = await run(fake)
    assert outcome.summary is not None
    first, second = outcome.summary.clusters
    assert first.signature == "sig-001"
    assert first.evidence == ""
    assert first.confidence == UNGROUNDED_CONFIDENCE_CAP
    assert second.signature == "sig-002"
    assert second.evidence == "Connection refused ... db-2:5432"
    assert second.confidence == 1.0  # clamped


def test_config_repr_hides_the_api_key() -> None:
    assert "sk-secret" not in repr(LlmConfig(model="m", api_key="sk-secret"))
