"""The operator's ``aac runner register|list|revoke|secret|settings`` (on the database)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import EXIT_OK, EXIT_USAGE, CliError, say
from bot.commands import with_runtime
from bot.runner_jobs import DEFAULT_MAX_ATTEMPTS
from bot.runtime import Runtime
from config.settings import Settings
from storage import orgs, runners
from storage.models import Organization
from storage.types import utcnow

# A job re-run more often than this on vanishing nodes is broken, not unlucky.
MAX_ATTEMPTS_LIMIT = 20


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = max(0, int((utcnow() - when).total_seconds()))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def runner_admin(args: argparse.Namespace, settings: Settings) -> int:
    """Dispatch one operator subcommand of ``aac runner``."""

    async def run(runtime: Runtime) -> int:
        async with runtime.sessions.begin() as session:
            org = await orgs.get_org(session, args.org) if getattr(args, "org", None) else None
            try:
                if args.runner_cmd == "register":
                    assert org is not None
                    return await _register(session, org)
                if args.runner_cmd == "list":
                    return await _list(session, org)
                if args.runner_cmd == "revoke":
                    assert org is not None
                    return await _revoke(session, org, args)
                if args.runner_cmd == "secret":
                    assert org is not None
                    value = sys.stdin.readline().rstrip("\r\n")
                    await runners.set_secret(session, runtime.vault, org, args.name, value)
                    say(f"stored secret {args.name} for {org.slug} (encrypted)")
                    say(f"suites name it in .aac.yml as: VAR: {{secret: {args.name}}}")
                    return EXIT_OK
                assert org is not None
                return _settings(org, args)
            except runners.RunnerError as exc:
                raise CliError(str(exc), EXIT_USAGE) from None

    return with_runtime(settings, run)


async def _register(session: AsyncSession, org: Organization) -> int:
    token = await runners.create_registration(session, org)
    say(f"registration token for {org.slug} (shown once; nodes trade it for their own token):")
    say(token)
    say(
        f"next: AAC_RUNNER_TOKEN=<token> aac runner --server URL   (revoke: aac runner revoke "
        f"--org {org.slug} --registrations)"
    )
    return EXIT_OK


async def _list(session: AsyncSession, org: Organization | None) -> int:
    found = await runners.list_runners(session, org.id if org else None)
    if not found:
        say("no runners registered; `aac runner register --org ORG`, then start `aac runner`")
        return EXIT_OK
    current = await runners.current_jobs(session, [r.id for r in found])
    slugs = {o.id: o.slug for o in await orgs.list_orgs(session)}
    say("ORG\tNAME\tLABELS\tLAST HEARTBEAT\tSTATE\tCURRENT JOB")
    for runner in found:
        job = current.get(runner.id)
        doing = "-"
        if job is not None:
            took = (utcnow() - job.assigned_at).total_seconds() if job.assigned_at else 0.0
            doing = f"job {job.id} cycle {job.cycle_id} ({job.repository}, {took:.0f} s)"
        state = "revoked" if runner.revoked_at else "active"
        say(
            f"{slugs.get(runner.org_id, runner.org_id)}\t{runner.name}\t"
            f"{','.join(runner.labels) or '-'}\t{_ago(runner.last_seen_at)}\t{state}\t{doing}"
        )
    return EXIT_OK


async def _revoke(session: AsyncSession, org: Organization, args: argparse.Namespace) -> int:
    if args.registrations:
        count = await runners.revoke_registrations(session, org)
        say(f"revoked {count} registration token(s) of {org.slug}; registered nodes keep working")
        return EXIT_OK
    if not args.name:
        raise CliError("name the node to revoke (see `aac runner list`)", EXIT_USAGE)
    runner = await runners.revoke_runner(session, org, args.name)
    say(f"revoked runner {runner.name}; its running job is re-queued once its lease runs out")
    return EXIT_OK


def _settings(org: Organization, args: argparse.Namespace) -> int:
    current = dict((org.settings or {}).get("runners") or {})
    if args.allow_forks is not None:
        current["allow_forks"] = args.allow_forks
    if args.clone_url is not None:
        if "{repository}" not in args.clone_url:
            raise CliError("--clone-url must contain {repository}", EXIT_USAGE)
        current["clone_url"] = args.clone_url
    if args.max_attempts is not None:
        if not 1 <= args.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise CliError(
                f"--max-attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}, "
                f"not {args.max_attempts}",
                EXIT_USAGE,
            )
        current["max_attempts"] = args.max_attempts
    org.settings = {**(org.settings or {}), "runners": current}
    forks = "run after /aac approve" if current.get("allow_forks") else "never run"
    attempts = current.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
    say(
        f"{org.slug}: fork PRs {forks}; clone from {current.get('clone_url') or 'the SCM'}; "
        f"{attempts} attempt(s) per job"
    )
    return EXIT_OK
