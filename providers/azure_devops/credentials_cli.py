"""``aac azure webhook-credentials``: generate the service hooks' basic-auth password once."""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from config.settings import Settings
from providers.cli import EXIT_OK, CliError, say
from providers.registry import CliGroup, CliRuntime, WithRuntime
from storage import orgs

NAME = "azure"
USERNAME = "aac"  # any user name works: only the password is checked


def add_parser(azure: Any) -> None:
    """``webhook-credentials``, added to the ``azure`` group's subcommands."""
    creds = azure.add_parser(
        "webhook-credentials",
        help="generate (or replace) the organisation's service-hook password; shown once",
    )
    creds.add_argument("--org", required=True)


def run(args: argparse.Namespace, settings: Settings, *, with_runtime: WithRuntime) -> int:
    """``aac azure webhook-credentials --org ORG``."""
    password = secrets.token_urlsafe(32)

    async def store(runtime: CliRuntime) -> int:
        async with runtime.sessions.begin() as session:
            try:
                org = await orgs.get_org(session, args.org)
            except orgs.OrgError as exc:
                raise CliError(str(exc)) from None
            await orgs.set_integration(
                session,
                runtime.vault,
                org,
                "azure",
                webhook_secret=password,
                enabled=(org.integrations.get("azure") is None)
                or org.integrations["azure"].enabled,
            )
        url = f"{settings.public_url.rstrip('/')}/webhooks/azure/{args.org}"
        say(f"service-hook credentials of {args.org} stored; the password is shown only now:")
        say(f"  URL:      {url}")
        say(f"  username: {USERNAME}")
        say(f"  password: {password}")
        say(
            "create Web Hooks subscriptions (Project settings > Service hooks) for "
            "git.pullrequest.created, git.pullrequest.updated, build.complete and "
            "ms.vss-code.git-pullrequest-comment-event with these basic-auth credentials; "
            "running this again replaces the password"
        )
        return EXIT_OK

    return with_runtime(settings, store)


GROUP = CliGroup(NAME, add_parser, run)
