"""The grounded LLM summary: one litellm call per new set of failures, validated and sanitised.

The deterministic report never depends on this: any problem (no model, timeout, provider error,
invalid answer, budget) gives ``summary=None`` and a neutral one-line note, never the error text.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.analysis.model import ClusterExplanation, FailureCluster, LlmSummary
from bot.analysis.prompt import (
    DEFAULT_TOKEN_BUDGET,
    PROMPT_VERSION,
    Prompt,
    TokenCounter,
    build_prompt,
    estimate_tokens,
)
from bot.analysis.redact import Redactor
from bot.report.sanitize import sanitise_llm_text

if TYPE_CHECKING:
    from config.settings import Settings

logger = logging.getLogger(__name__)

NOTE_UNAVAILABLE = "AI analysis unavailable this time; the deterministic report is complete."
NOTE_NOT_CONFIGURED = "AI analysis is not configured; the deterministic report is complete."
NOTE_NOTHING_TO_ANALYSE = "No failures to analyse."

MAX_SUMMARY_CHARS = 1500
MAX_FIELD_CHARS = 600
# An evidence quote the model cannot point to in its input is not evidence: drop it and cap
# the confidence of that explanation.
UNGROUNDED_CONFIDENCE_CAP = 0.3
# Signs that the model repeated an instruction planted in the test output instead of analysing
# it. Such text must not reach a PR, and it shows the answer was steered: a summary carrying it
# makes the whole answer invalid; a cluster explanation carrying it is dropped.
_INJECTION = re.compile(
    r"(?i)\b(?:ignore|disregard|forget)\b.{0,20}\b(?:previous|prior|above|earlier|preceding|all)\b"
    r".{0,20}\b(?:instructions?|prompts?|rules|messages|context)\b"
    r"|\b(?:system|developer) prompt\b|\byou are now\b|\bnew instructions\b"
    r"|\bapprove (?:this|the) (?:pr|pull request|merge request|mr|change)\b"
    r"|<\|im_(?:start|end)\|>|\[/?INST\]"
)
_RETRY_REMINDER = (
    "\n\nYour previous answer was not a valid JSON object of the requested shape. "
    "Answer again with the JSON object only."
)


@dataclass(frozen=True, slots=True)
class LlmConfig:
    """Which model to ask and how. ``api_key`` is decrypted by the caller; never logged."""

    model: str | None
    fallback_models: tuple[str, ...] = ()
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 30.0  # seconds, per request
    token_budget: int = DEFAULT_TOKEN_BUDGET  # prompt tokens
    max_output_tokens: int = 1500

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmConfig:
        """The configuration the operator set with ``AAC_LLM_*``."""
        return cls(
            model=settings.llm_model,
            fallback_models=tuple(settings.llm_fallback_models),
            api_base=settings.llm_api_base,
            api_key=settings.llm_api_key,
            timeout=settings.llm_timeout,
            token_budget=settings.llm_token_budget,
        )


class OutcomeReason(StrEnum):
    """Why the outcome is what it is; stored and shown to operators, never to PR readers."""

    OK = "ok"
    CACHED = "cached"
    NO_CLUSTERS = "no_clusters"
    NO_MODEL = "no_model"
    BUDGET_EXHAUSTED = "budget_exhausted"
    TIMEOUT = "timeout"
    ERROR = "error"
    INVALID_OUTPUT = "invalid_output"


@dataclass(slots=True)
class LlmOutcome:
    """The summary when there is one; otherwise a neutral note for the report."""

    summary: LlmSummary | None
    reason: OutcomeReason
    note: str | None = None
    requests: int = 0  # HTTP calls made to the model(s)
    prompt_tokens: int = 0  # as counted by the prompt builder (0 when nothing was built)


class SummaryCache(Protocol):
    """Where answers are kept by cache key. Implementations must scope keys per tenant."""

    async def get(self, key: str) -> LlmSummary | None: ...

    async def put(self, key: str, summary: LlmSummary) -> None: ...


class InMemorySummaryCache:
    """A bounded LRU cache in process memory (one process, lost on restart)."""

    def __init__(self, max_entries: int = 512) -> None:
        self._entries: OrderedDict[str, LlmSummary] = OrderedDict()
        self._max = max_entries

    async def get(self, key: str) -> LlmSummary | None:
        summary = self._entries.get(key)
        if summary is not None:
            self._entries.move_to_end(key)
        return summary

    async def put(self, key: str, summary: LlmSummary) -> None:
        self._entries[key] = summary
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def cache_key(
    signatures: Iterable[str], model: str, *, scope: str = "", evidence: Iterable[str] = ()
) -> str:
    """Key for an answer by ``model`` within ``scope`` (tenant), grounded on ``evidence`` (the
    prompt's DATA texts) about the clusters with these signatures. A signature masks numbers,
    names and paths, so two cycles sharing one can show different failures: keyed on the
    signatures alone, one cycle's explanation, quoting its data, would be posted on another."""
    material = json.dumps([PROMPT_VERSION, scope, model, sorted(set(signatures)), sorted(evidence)])
    return hashlib.sha256(material.encode()).hexdigest()


async def summarise(
    clusters: Sequence[FailureCluster],
    *,
    log_tail: str | None,
    config: LlmConfig,
    redactor: Redactor,
    cache: SummaryCache,
    allowed_link_hosts: Set[str] = frozenset(),
    cache_scope: str = "",
    count_tokens: TokenCounter = estimate_tokens,
) -> LlmOutcome:
    """Ask the configured model(s) to explain ``clusters``; never raises for model problems.

    ``cache_scope`` (e.g. the organisation id) keeps one tenant's answers from another's.
    """
    if not clusters:
        return LlmOutcome(None, OutcomeReason.NO_CLUSTERS, NOTE_NOTHING_TO_ANALYSE)
    if not config.model:
        return LlmOutcome(None, OutcomeReason.NO_MODEL, NOTE_NOT_CONFIGURED)

    def finish(summary: LlmSummary) -> LlmSummary:
        return _sanitised(summary, redactor, allowed_link_hosts)

    prompt = build_prompt(
        clusters,
        redactor=redactor,
        log_tail=log_tail,
        token_budget=config.token_budget,
        count_tokens=count_tokens,
    )
    if not prompt.fits:
        logger.warning("llm summary skipped: prompt does not fit the token budget")
        return LlmOutcome(None, OutcomeReason.BUDGET_EXHAUSTED, NOTE_UNAVAILABLE)

    key = cache_key(
        (c.signature for c in clusters), config.model, scope=cache_scope, evidence=prompt.evidence
    )
    cached = await _cache_get(cache, key)
    if cached is not None:
        # A stored answer is data too: its quotes are checked against this cycle's own.
        return LlmOutcome(finish(_regrounded(cached, prompt)), OutcomeReason.CACHED)

    completion = _import_litellm_completion()
    requests = 0
    reason = OutcomeReason.ERROR
    for model in (config.model, *config.fallback_models):
        messages = prompt.messages
        for attempt in range(2):
            requests += 1
            try:
                response = await asyncio.wait_for(
                    completion(**_request(model, messages, config)),
                    # litellm enforces the timeout itself; this is the backstop.
                    timeout=config.timeout + 1.0,
                )
            except Exception as exc:
                reason = OutcomeReason.TIMEOUT if _is_timeout(exc) else OutcomeReason.ERROR
                # The class only: provider messages can quote the prompt or the key's prefix.
                logger.warning("llm call to %s failed: %s", model, type(exc).__name__)
                break  # next model
            summary = _summary_from_response(response, prompt, model, redactor)
            if summary is not None:
                await _cache_put(cache, key, summary)
                return LlmOutcome(
                    finish(summary),
                    OutcomeReason.OK,
                    requests=requests,
                    prompt_tokens=prompt.tokens,
                )
            logger.warning("llm answer from %s is not valid (attempt %d)", model, attempt + 1)
            if attempt == 0:
                messages = _with_reminder(messages)
        else:
            # Two invalid answers: the model is reachable but unusable for this prompt.
            return LlmOutcome(
                None,
                OutcomeReason.INVALID_OUTPUT,
                NOTE_UNAVAILABLE,
                requests=requests,
                prompt_tokens=prompt.tokens,
            )
    return LlmOutcome(
        None, reason, NOTE_UNAVAILABLE, requests=requests, prompt_tokens=prompt.tokens
    )


def _import_litellm_completion() -> Any:
    # The one sanctioned environment write: without it importing litellm fetches a model price
    # list over the network. setdefault keeps an operator's explicit choice.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # lazy: takes seconds to import

    # Otherwise litellm prints help banners to stdout on every failed call.
    litellm.suppress_debug_info = True
    return litellm.acompletion


def _request(model: str, messages: list[dict[str, str]], config: LlmConfig) -> dict[str, Any]:
    return {
        "model": model,
        "messages": messages,
        "api_base": config.api_base,
        "api_key": config.api_key,
        "timeout": config.timeout,
        "max_tokens": config.max_output_tokens,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        # Providers that do not know response_format get the request without it.
        "drop_params": True,
        # Retries are ours (once on invalid output, then the next model); the SDK's own
        # retries would multiply calls and timeouts.
        "num_retries": 0,
        "max_retries": 0,
    }


def _with_reminder(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    *head, last = messages
    return [*head, {"role": last["role"], "content": last["content"] + _RETRY_REMINDER}]


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower()


async def _cache_get(cache: SummaryCache, key: str) -> LlmSummary | None:
    try:
        return await cache.get(key)
    except Exception as exc:  # a cache outage costs a call, not the report
        logger.warning("llm cache read failed: %s", type(exc).__name__)
        return None


async def _cache_put(cache: SummaryCache, key: str, summary: LlmSummary) -> None:
    try:
        await cache.put(key, summary)
    except Exception as exc:
        logger.warning("llm cache write failed: %s", type(exc).__name__)


# ---------------------------------------------------------------------------------------------
# Validation and grounding


class _ClusterAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    signature: str
    likely_cause: str
    evidence: str = ""
    suggested_fix: str = ""
    confidence: float = 0.5


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: str = Field(min_length=1)
    clusters: list[_ClusterAnswer] = Field(default_factory=list)


_CODE_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*|\s*```\s*$")


def _parse_answer(content: str | None) -> _Answer | None:
    """The JSON object in ``content`` if it has the requested shape, else None."""
    if not content:
        return None
    text = _CODE_FENCE.sub("", content.strip())
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        return None
    try:
        return _Answer.model_validate(json.loads(text[start : end + 1]))
    except (ValueError, ValidationError):
        return None


def _summary_from_response(
    response: Any, prompt: Prompt, model: str, redactor: Redactor
) -> LlmSummary | None:
    try:
        content = response.choices[0].message.content
        usage = getattr(response, "usage", None)
    except (AttributeError, IndexError, TypeError):
        return None
    answer = _parse_answer(content if isinstance(content, str) else None)
    if answer is None or _INJECTION.search(answer.summary):
        return None
    return LlmSummary(
        summary=redactor.redact(answer.summary),
        clusters=_explanations(answer.clusters, prompt, redactor),
        model=model,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )


def _explanations(
    answers: list[_ClusterAnswer], prompt: Prompt, redactor: Redactor
) -> list[ClusterExplanation]:
    """Keep answers about clusters we asked about (by id or signature), once each, grounded."""
    known = prompt.represented
    haystack = _normalise("\n".join(prompt.data))
    seen: set[str] = set()
    out: list[ClusterExplanation] = []
    for answer in answers:
        given = answer.signature.strip()
        signature = prompt.aliases.get(given.upper(), given)
        if signature not in known or signature in seen:
            continue  # invented or repeated
        if any(
            _INJECTION.search(text)
            for text in (answer.likely_cause, answer.evidence, answer.suggested_fix)
        ):
            logger.warning("llm explanation dropped: it repeats an instruction from the data")
            continue
        seen.add(signature)
        confidence = answer.confidence if math.isfinite(answer.confidence) else 0.0
        confidence = min(1.0, max(0.0, confidence))
        evidence = redactor.redact(answer.evidence.strip().strip("`\"'"))
        if evidence and not _grounded(evidence, haystack):
            evidence = ""
            confidence = min(confidence, UNGROUNDED_CONFIDENCE_CAP)
        out.append(
            ClusterExplanation(
                signature=signature,
                likely_cause=redactor.redact(answer.likely_cause),
                evidence=evidence,
                suggested_fix=redactor.redact(answer.suggested_fix),
                confidence=confidence,
            )
        )
    return out


def _regrounded(summary: LlmSummary, prompt: Prompt) -> LlmSummary:
    """A cached answer held to this prompt: explanations of clusters it does not name are
    dropped, and quotes absent from its data are removed with their confidence capped."""
    haystack = _normalise("\n".join(prompt.data))
    kept: list[ClusterExplanation] = []
    for explanation in summary.clusters:
        if explanation.signature not in prompt.represented:
            continue
        if explanation.evidence and not _grounded(explanation.evidence, haystack):
            explanation = replace(
                explanation,
                evidence="",
                confidence=min(explanation.confidence, UNGROUNDED_CONFIDENCE_CAP),
            )
        kept.append(explanation)
    return replace(summary, clusters=kept)


_ELLIPSIS = re.compile(r"\.\.\.|…")


def _grounded(evidence: str, haystack: str) -> bool:
    """Every part of the quote (split at ellipses) occurs in the prompt's data."""
    parts = [p for p in (_normalise(x) for x in _ELLIPSIS.split(evidence)) if len(p) >= 4]
    return bool(parts) and all(p in haystack for p in parts)


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _sanitised(summary: LlmSummary, redactor: Redactor, hosts: Set[str]) -> LlmSummary:
    def clean(text: str, limit: int) -> str:
        return sanitise_llm_text(text, allowed_link_hosts=hosts, max_chars=limit, redactor=redactor)

    return replace(
        summary,
        summary=clean(summary.summary, MAX_SUMMARY_CHARS),
        clusters=[
            replace(
                c,
                likely_cause=clean(c.likely_cause, MAX_FIELD_CHARS),
                evidence=clean(c.evidence, MAX_FIELD_CHARS),
                suggested_fix=clean(c.suggested_fix, MAX_FIELD_CHARS),
            )
            for c in summary.clusters
        ],
    )
