"""``aac cycles run --repo OWNER/NAME --sha SHA --suite NAME``: an operator starts a suite with
the ``manual`` trigger at a commit, without a pull request comment (bot/manual_start.py)."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, say
from bot.handlers.context import HandlerContext
from bot.links import signed_report_url
from bot.manual_runs import ManualRunRefused
from bot.manual_start import ManualStart, start_manual
from bot.runtime import Runtime
from providers.factory import ProviderShared
from providers.registry import package_for, packages
from storage import orgs
from storage.models import Organization, TestCycle
from storage.write_slots import WriteSlots


async def organisation_of(
    session: AsyncSession, slug: str | None, source: str, repository: str
) -> Organization:
    """The organisation ``--org`` names, else the only one whose cycles name the repository."""
    if slug:
        return await orgs.get_org(session, slug)
    rows = await session.execute(
        select(Organization)
        .join(TestCycle, TestCycle.org_id == Organization.id)
        .where(TestCycle.source == source, TestCycle.repository == repository)
        .distinct()
    )
    found = list(rows.scalars())
    if len(found) == 1:
        return found[0]
    if not found:
        raise CliError(
            f"no cycle of {source} repository {repository} is known to tell its organisation; "
            "name it with --org",
            EXIT_USAGE,
        )
    names = ", ".join(sorted(org.slug for org in found))
    raise CliError(
        f"cycles of {repository} belong to several organisations ({names}); choose one with --org",
        EXIT_USAGE,
    )


async def run_manual(args: argparse.Namespace, runtime: Runtime) -> int:
    """Start the suite; print the cycle and a link to its report page."""
    package = package_for(args.source)
    if package is None:
        known = ", ".join(p.source for p in packages())
        raise CliError(
            f"--source {args.source!r} is not an SCM this bot speaks: {known}", EXIT_USAGE
        )
    async with runtime.sessions() as session:
        org = await organisation_of(session, args.org, args.source, args.repo)
        host = (args.host or "").lower() or await package.host_for_org(session, org)
    start = ManualStart(args.source, host, args.repo, args.sha.strip().lower(), args.suite)
    # Its SCM writes (a configuration error's status) are paced with the running bot's.
    shared = ProviderShared.paced(WriteSlots(runtime.engine))
    try:
        cycle, created = await start_manual(HandlerContext(runtime, shared), org, start)
    except ManualRunRefused as refused:
        raise CliError(refused.message, EXIT_FAILED) from None
    finally:
        await shared.close()
    state = "started" if created else "still running, not started again:"
    say(f"{state} cycle {cycle.id} of suite {cycle.suite} at {cycle.sha[:12]} ({org.slug})")
    settings = runtime.settings
    say(signed_report_url(settings.public_url, runtime.vault.keyring, cycle.id), sys.stderr)
    return EXIT_OK
