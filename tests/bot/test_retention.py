"""Retention settings: one number of days, overridden per kind; the prune job is periodic."""

from __future__ import annotations

from bot.jobs import job_handlers, periodic_jobs
from bot.retention import PRUNE_JOB, retention_policy
from bot.runtime import Runtime
from config.settings import load_settings
from storage.retention import RetentionPolicy


def test_days_per_kind_default_to_the_general_setting() -> None:
    settings = load_settings(
        {
            "AAC_RETENTION_DAYS": "10",
            "AAC_RETENTION_HISTORY_DAYS": "400",
            "AAC_RETENTION_INTERVAL_SECONDS": "600",
        }
    )
    assert retention_policy(settings) == RetentionPolicy(
        jobs_days=10, deliveries_days=10, history_days=400
    )
    [prune] = [job for job in periodic_jobs(settings) if job.kind == PRUNE_JOB]
    assert prune.every == 600.0
    assert retention_policy(load_settings({})) == RetentionPolicy(30, 30, 30)


def test_every_worker_can_run_the_prune_job(runtime: Runtime) -> None:
    assert PRUNE_JOB in job_handlers(runtime)
