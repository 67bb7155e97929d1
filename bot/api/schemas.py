"""Request bodies of the CI API, validated with pydantic."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.api.errors import ApiError
from providers.context import CiContext

M = TypeVar("M", bound=BaseModel)


class _Commit(BaseModel):
    """A commit of a repository of an SCM, as request bodies name it."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    # The SCM's API host ("gitlab.example.com"); default: where the organisation's
    # credentials for ``source`` point.
    host: str = Field(default="", max_length=255, pattern=r"^[A-Za-z0-9.:-]*$")
    repository: str = Field(min_length=1, max_length=300)
    sha: str = Field(min_length=4, max_length=64, pattern=r"^[0-9a-fA-F]+$")


class CycleCreate(_Commit):
    """``POST /api/v1/cycles``: the CI context a cycle is born with."""

    pr: int | None = Field(default=None, ge=1)
    ref: str | None = Field(default=None, max_length=300)
    base_ref: str | None = Field(default=None, max_length=300)
    pipeline_id: str | None = Field(default=None, max_length=200)
    pipeline_url: str | None = Field(default=None, max_length=1000)
    run_attempt: int = Field(default=1, ge=1, le=10_000)
    suite: str = Field(default="tests", min_length=1, max_length=100)
    trigger: str = Field(default="ci", min_length=1, max_length=50)

    @field_validator("pipeline_id", mode="before")
    @classmethod
    def _stringify(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @field_validator("pipeline_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    def to_context(self) -> CiContext:
        return CiContext(
            source=self.source,
            host=self.host.lower(),
            repository=self.repository,
            sha=self.sha.lower(),
            pr=self.pr,
            ref=self.ref,
            base_ref=self.base_ref,
            pipeline_id=self.pipeline_id,
            pipeline_url=self.pipeline_url,
            run_attempt=self.run_attempt,
            suite=self.suite,
            trigger=self.trigger,
        )


class ManualCycleCreate(_Commit):
    """``POST /api/v1/cycles/manual``: a suite with the ``manual`` trigger to start at a commit."""

    suite: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")


class CycleComplete(BaseModel):
    """``POST /api/v1/cycles/{id}/complete``."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["success", "failure", "cancelled", "timed_out"] | None = None
    exit_code: int | None = None
    timeout_seconds: int | None = Field(default=None, ge=1)

    @field_validator("timeout_seconds")
    @classmethod
    def _only_when_timed_out(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("outcome") != "timed_out":
            raise ValueError("is only for outcome timed_out (the limit the run hit)")
        return value


def parse_body(model: type[M], raw: bytes) -> M:
    """Validate a JSON body; 400 for unparsable JSON, 422 naming the first bad field."""
    if not raw.strip():
        raw = b"{}"
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ApiError(400, "invalid_json", f"body is not valid JSON: {first['msg']}") from None
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, "invalid_field", f"{field}: {first['msg']}", field=field) from None
