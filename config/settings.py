"""Typed settings from ``AAC_*`` environment variables, parsed once at start-up."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "AAC_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./aac.db"
# AAC_ variables read elsewhere: not settings, and not typos of one.
OTHER_VARIABLES = frozenset(
    {
        "AAC_SERVE_NO_WORKER",
        "AAC_API_KEY",
        "AAC_SERVER_URL",
        "AAC_TEST_PG_ADMIN_URL",
        "AAC_TEST_PG_PORT",
    }
)


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable and never its value."""


class Settings(BaseModel):
    """Everything the service reads from its environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = DEFAULT_DATABASE_URL
    # ``id:base64key,...``; the first is current. Kept as a string: the vault parses it.
    secret_keys: str | None = Field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8000"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Worker
    worker_concurrency: int = Field(default=16, ge=1, le=256)
    worker_poll_interval: float = Field(default=0.5, gt=0, le=60)
    job_lease_seconds: float = Field(default=60.0, ge=1, le=3600)

    # Retention: finished jobs, webhook deliveries and per-test results older than this are
    # pruned by a periodic job; each kind may keep its own number of days.
    retention_days: int = Field(default=30, ge=1, le=36500)
    retention_jobs_days: int | None = Field(default=None, ge=1, le=36500)
    retention_deliveries_days: int | None = Field(default=None, ge=1, le=36500)
    retention_history_days: int | None = Field(default=None, ge=1, le=36500)
    retention_interval_seconds: float = Field(default=3600.0, ge=1, le=7 * 86400)

    # Testing nodes: how long a job's lease lasts without a heartbeat (a node that vanishes
    # loses its job after this), and how long a node's poll for work waits on the server.
    runner_lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    runner_poll_seconds: float = Field(default=25.0, ge=0, le=120)
    # How often a worker looks for leases that ran out: with no node polling, nothing else
    # re-queues (or fails) a vanished node's job.
    runner_expire_interval: float = Field(default=15.0, gt=0, le=3600)

    # CI API
    max_result_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    # One file's XML after gzip is undone (a small gzip body can expand a thousandfold).
    max_expanded_result_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # Failed API key authentications per client address (key guessing needs no organisation).
    auth_failures_per_minute: int = Field(default=30, ge=1)

    # Hosts of the CI systems every organisation runs (e.g. jenkins.example.com): the only
    # pipeline-URL hosts the AI summary may link to (an organisation adds its own in its
    # settings as ``ci_hosts``). A CI key holder's pipeline URL alone never allows a host.
    ci_hosts: tuple[str, ...] = ()

    # GitHub: also map a new installation to the organisation named like its account. Unsafe
    # for a public App (anyone can create an account named like a tenant): an opt-in for
    # single-tenant deployments; otherwise ``aac org create --github-account`` claims one.
    github_auto_link: bool = False
    # GitHub never retries a failed webhook delivery: the worker asks for failed ones again
    # every this many seconds (0 = never), looking back this far (GitHub keeps 3 days).
    github_redeliver_interval: float = Field(default=900.0, ge=0, le=86_400)
    github_redeliver_window: float = Field(default=8 * 3600.0, ge=60, le=3 * 86_400)

    # LLM (litellm); unset model = deterministic reports only
    llm_model: str | None = None
    llm_api_base: str | None = None
    llm_api_key: str | None = Field(default=None, repr=False)
    llm_fallback_models: tuple[str, ...] = ()
    llm_timeout: float = Field(default=30.0, gt=0, le=600)
    llm_token_budget: int = Field(default=8000, ge=500, le=1_000_000)

    @field_validator("database_url")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                "(e.g. postgresql+asyncpg://user@host:5432/aac)"
            )
        if value.startswith("postgresql://"):
            value = "postgresql+asyncpg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. https://aac.example.com")
        return value.rstrip("/")

    @field_validator("llm_fallback_models", "ci_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """Path of the SQLite database file, or None for PostgreSQL / in-memory."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1].split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Build settings from ``AAC_*`` variables; raise SettingsError naming the bad variable."""
    fields = Settings.model_fields
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key.removeprefix(ENV_PREFIX).lower()
        if name in fields and raw != "":
            values[name] = raw.upper() if name == "log_level" else raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{ENV_PREFIX}{field.upper()}: {message}") from None


def misspelt_variables(environ: Mapping[str, str]) -> list[str]:
    """One line per ``AAC_*`` variable that is no setting but looks like one (a typo would
    otherwise leave the default in force without a word)."""
    known = [ENV_PREFIX + name.upper() for name in Settings.model_fields]
    lines = []
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX) or key in known or key in OTHER_VARIABLES:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close:
            lines.append(f"{key} is not a setting and is ignored; did you mean {close[0]}?")
    return lines
