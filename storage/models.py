"""ORM models: organisations and their integrations, API keys, the GitHub App, test cycles,
per-test results, webhook deliveries and jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    attribute_keyed_dict,
    mapped_column,
    relationship,
)

from storage.types import JsonType, UtcDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Integer primary keys that autoincrement on both engines (SQLite only does so for INTEGER).
BigIntPk = BigInteger().with_variant(Integer(), "sqlite")


def new_cycle_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # Per SCM, the accounts whose App installations link to this organisation on their own
    # (``aac org create --github-account``): ``{"github": ["acme"]}``, logins lower-cased.
    # Any other installation waits for an operator's ``aac github-app link``.
    scm_claims: Mapped[dict[str, list[str]]] = mapped_column(
        JsonType, default=dict, server_default="{}"
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    integrations: Mapped[dict[str, Integration]] = relationship(
        collection_class=attribute_keyed_dict("provider"),
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class Integration(Base):
    """An organisation's link to one SCM: its base URL, encrypted token and webhook secret."""

    __tablename__ = "integrations"
    __table_args__ = (UniqueConstraint("org_id", "provider"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(16))  # github | gitlab | azure | llm
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    base_url: Mapped[str | None] = mapped_column(String(500))
    token_enc: Mapped[str | None] = mapped_column(Text)
    webhook_secret_enc: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """A CI credential: shown once, stored as a SHA-256 hash beside a visible prefix."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    # Comma-separated: "report" (create cycles, upload, complete), "read" (list cycles, pages),
    # "run" (start manual suites on the testing nodes).
    scopes: Mapped[str] = mapped_column(
        String(64), default="report,read", server_default="report,read"
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class GithubApp(Base):
    """Credentials of the GitHub App this deployment runs as (one per API host)."""

    __tablename__ = "github_apps"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    app_id: Mapped[int] = mapped_column(BigInteger)
    api_url: Mapped[str] = mapped_column(String(500), default="https://api.github.com")
    slug: Mapped[str | None] = mapped_column(String(200))
    bot_login: Mapped[str | None] = mapped_column(String(200))
    private_key_enc: Mapped[str] = mapped_column(Text)
    webhook_secret_enc: Mapped[str] = mapped_column(Text)
    # OAuth client credentials, known only for Apps registered by `aac github-app create`.
    client_id: Mapped[str | None] = mapped_column(String(200))
    client_secret_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("api_url", "app_id"),)


class Installation(Base):
    """A GitHub App installation, mapped to the organisation whose cycles it publishes.

    Installation ids are unique per App only: GitHub Enterprise Servers number their
    installations from 1, so github.com's installation 3 and a GHES's are different rows.
    """

    __tablename__ = "installations"
    __table_args__ = (
        UniqueConstraint(
            "github_app_id", "installation_id", name="uq_installations_app_installation"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    github_app_id: Mapped[int] = mapped_column(ForeignKey("github_apps.id", ondelete="CASCADE"))
    # Webhooks other than ``installation`` name the installation by id alone.
    installation_id: Mapped[int] = mapped_column(BigInteger, index=True)
    account_login: Mapped[str] = mapped_column(String(200))
    account_type: Mapped[str] = mapped_column(String(32), default="Organization")
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL"), index=True
    )
    repositories: Mapped[list[str]] = mapped_column(JsonType, default=list)
    permissions: Mapped[dict[str, str]] = mapped_column(JsonType, default=dict)
    suspended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TestCycle(Base):
    """One run of one suite for one commit, with its CI context at the root."""

    __test__ = False
    __tablename__ = "test_cycles"
    __table_args__ = (
        Index("ix_test_cycles_org_repo_sha", "org_id", "repository", "sha"),
        Index("ix_test_cycles_org_repo_pr", "org_id", "repository", "pr"),
        Index("ix_test_cycles_org_repo_ref_suite", "org_id", "repository", "ref", "suite"),
        UniqueConstraint("org_id", "idempotency_key"),
        UniqueConstraint(
            "org_id",
            "source",
            "host",
            "repository",
            "sha",
            "suite",
            "pipeline_id",
            "run_attempt",
            name="uq_test_cycles_natural_key",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_cycle_id)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="collecting")
    # CI context
    source: Mapped[str] = mapped_column(String(32))
    # The SCM's API host; "" for sources that publish nowhere (migration 0006).
    host: Mapped[str] = mapped_column(String(255), default="", server_default="")
    repository: Mapped[str] = mapped_column(String(300))
    pr: Mapped[int | None] = mapped_column(BigInteger)
    sha: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str | None] = mapped_column(String(300))
    base_ref: Mapped[str | None] = mapped_column(String(300))
    # "" rather than NULL so the natural key is unique on both engines.
    pipeline_id: Mapped[str] = mapped_column(String(200), default="")
    pipeline_url: Mapped[str | None] = mapped_column(String(1000))
    run_attempt: Mapped[int] = mapped_column(Integer, default=1)
    suite: Mapped[str] = mapped_column(String(100), default="tests")
    trigger: Mapped[str] = mapped_column(String(50), default="ci")
    context_extra: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # Outcome
    outcome: Mapped[str | None] = mapped_column(String(16))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    # The limit a ``timed_out`` run hit, in seconds, when known (migration 0013).
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errored: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    flaky: Mapped[int] = mapped_column(Integer, default=0)
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    files: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    published: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    superseded_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class TestResultRow(Base):
    """One test case's result in one cycle; the history verdicts and flakiness come from."""

    __test__ = False
    __tablename__ = "test_results"
    __table_args__ = (Index("ix_test_results_cycle", "cycle_id"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    cycle_id: Mapped[str] = mapped_column(ForeignKey("test_cycles.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(500), default="")
    name: Mapped[str] = mapped_column(Text)
    classname: Mapped[str] = mapped_column(Text, default="")
    test_suite: Mapped[str] = mapped_column(Text, default="")
    test_file: Mapped[str | None] = mapped_column(Text)
    line: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    failure_type: Mapped[str | None] = mapped_column(Text)
    stack_trace: Mapped[str | None] = mapped_column(Text)
    stdout_tail: Mapped[str | None] = mapped_column(Text)
    stderr_tail: Mapped[str | None] = mapped_column(Text)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    # The upload these came from (cycle_uploads.id): a repeated upload replaces its rows.
    upload_id: Mapped[int | None] = mapped_column(BigInteger, index=True)


class CycleUpload(Base):
    """One result file uploaded to a cycle, known by the client's key and by its content, so
    a repeat (a retry after a timeout, a re-run of the same step) replaces instead of adding."""

    __tablename__ = "cycle_uploads"
    __table_args__ = (
        UniqueConstraint("cycle_id", "idempotency_key", name="uq_cycle_uploads_key"),
        UniqueConstraint("cycle_id", "content_sha256", name="uq_cycle_uploads_content"),
    )

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    cycle_id: Mapped[str] = mapped_column(ForeignKey("test_cycles.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # SHA-256 of the file's XML as parsed (after gzip), whatever encoding it travelled in.
    content_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(500))
    format: Mapped[str] = mapped_column(String(16))
    tests: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookDelivery(Base):
    """A received SCM webhook, kept for deduplication of redeliveries and for replay."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("provider", "delivery_id"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    org_id: Mapped[int | None] = mapped_column(BigInteger)
    # The App (``github_apps.id``) whose webhook secret verified the delivery: routing uses
    # its installations, never the host the payload's URLs point at. None where the URL's
    # organisation verified it (GitLab, Azure DevOps).
    app_id: Mapped[int | None] = mapped_column(BigInteger)
    # The raw body as signed, compressed (storage/delivery_body.py; intake is bound by how many
    # bytes reach the disk per commit): verified at intake, parsed by the worker.
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Job(Base):
    """A unit of background work, claimed by workers under a lease."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claimable", "status", "run_at"),
        # Coalescing: one pending job per unique key; finished ones don't block new work, and
        # jobs without a key stay out of the index (migration 0002).
        Index(
            "uq_jobs_pending_unique_key",
            "unique_key",
            unique=True,
            sqlite_where=text("status = 'queued' AND unique_key IS NOT NULL"),
            postgresql_where=text("status = 'queued' AND unique_key IS NOT NULL"),
        ),
        # One running job per unique key: claiming a keyed job looks here for a running job
        # with its key (storage/queue.py; migration 0004).
        Index(
            "ix_jobs_running_unique_key",
            "unique_key",
            sqlite_where=text("status = 'running' AND unique_key IS NOT NULL"),
            postgresql_where=text("status = 'running' AND unique_key IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    unique_key: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WriteSlot(Base):
    """One SCM write slot (an App installation or a token), shared by every process: who holds
    it and until when, and the earliest moment the next write may start (storage/write_slots.py).
    """

    __tablename__ = "write_slots"

    # SHA-256 of the provider's key (API URL, installation or token fingerprint), not the key.
    slot: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    # Seconds since the epoch: compared with arithmetic on both engines, no time zones involved.
    held_until: Mapped[float | None] = mapped_column(Float)
    next_at: Mapped[float] = mapped_column(Float, default=0.0)


class AnalysisCache(Base):
    """LLM results by cluster signatures and model, so a re-run with the same failures is free."""

    __tablename__ = "analysis_cache"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Counter(Base):
    """A named counter that only moves up (storage/counters.py): the highest SQLite intake id
    ever handed out, the last period each periodic job was queued for."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class RunnerRegistration(Base):
    """A per-organisation registration token: a testing node presents it once to get its own
    runner token. Stored hashed beside a visible prefix, like API keys; revocable."""

    __tablename__ = "runner_registrations"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Runner(Base):
    """A registered testing node: its labels, its token (hashed) and when it was last seen."""

    __tablename__ = "runners"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    labels: Mapped[list[str]] = mapped_column(JsonType, default=list)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RunnerSecret(Base):
    """A value a ``run`` suite's environment names as ``{secret: NAME}``, encrypted."""

    __tablename__ = "runner_secrets"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    value_enc: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class RunnerJob(Base):
    """One ``run`` suite of one cycle, executed by a testing node under a lease."""

    __tablename__ = "runner_jobs"
    __table_args__ = (
        Index("ix_runner_jobs_claimable", "state", "id"),
        Index("ix_runner_jobs_org_state", "org_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    cycle_id: Mapped[str] = mapped_column(
        ForeignKey("test_cycles.id", ondelete="CASCADE"), unique=True
    )
    suite: Mapped[str] = mapped_column(String(100))
    repository: Mapped[str] = mapped_column(String(300))
    sha: Mapped[str] = mapped_column(String(64))
    labels: Mapped[list[str]] = mapped_column(JsonType, default=list)
    # command, image, workdir, env (plain values), secrets (names), timeout, results, clone_url
    spec: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # awaiting_approval | queued | running | done | timed_out | cancelled | failed | refused
    state: Mapped[str] = mapped_column(String(20), default="queued")
    reason: Mapped[str | None] = mapped_column(Text)
    from_fork: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    runner_id: Mapped[int | None] = mapped_column(ForeignKey("runners.id", ondelete="SET NULL"))
    runner_name: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    log_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    command_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RunnerLogChunk(Base):
    """A bounded piece of a job's output, masked before it was stored."""

    __tablename__ = "runner_log_chunks"
    __table_args__ = (
        UniqueConstraint("job_id", "attempt", "seq", name="uq_runner_log_chunks_job_attempt_seq"),
    )

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("runner_jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
