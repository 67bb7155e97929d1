"""``aac github-app configure|link|create|sync|redeliver``: the GitHub App's credentials,
installations, and the App kept in step with its manifest file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from config.settings import Settings
from providers.cli import EXIT_OK, EXIT_USAGE, CliError, say
from providers.registry import CliGroup, CliRuntime, WithRuntime
from storage import orgs

NAME = "github-app"


def add_parser(subparsers: Any) -> None:
    """The ``github-app`` command group's arguments."""
    gh = subparsers.add_parser("github-app", help="the GitHub App").add_subparsers(
        dest="github_cmd", required=True
    )
    configure = gh.add_parser("configure", help="store an existing App's credentials")
    configure.add_argument("--app-id", type=int, required=True)
    configure.add_argument("--private-key-file", required=True, help="the App's PEM key")
    configure.add_argument(
        "--webhook-secret-stdin", action="store_true", help="read the webhook secret from stdin"
    )
    configure.add_argument(
        "--slug",
        help="the App's slug (its bot is <slug>[bot]); default: asked from GitHub, which also "
        "checks the key",
    )
    configure.add_argument(
        "--api-url", default="https://api.github.com", help="GitHub Enterprise Server API URL"
    )
    link = gh.add_parser(
        "link",
        help="map an installation to an organisation (reads it from GitHub); without "
        "--installation and --org, list the installations and what each is linked to",
    )
    link.add_argument("--installation", type=int)
    link.add_argument("--org")
    link.add_argument("--app-id", type=int, help="which App, when several are configured")
    link.add_argument("--api-url", help="which host's App, when App IDs repeat across hosts")
    manifest_help = "the App manifest (default app-manifests/github-app.yml)"
    create = gh.add_parser("create", help="register a new App from its manifest file")
    create.add_argument("--org", help="register it for this organisation (default: your account)")
    create.add_argument(
        "--github-url", default="https://github.com", help="GitHub Enterprise Server's URL"
    )
    create.add_argument("--manifest", default="app-manifests/github-app.yml", help=manifest_help)
    create.add_argument("--port", type=int, default=0, help="local form port (default: any)")
    create.add_argument(
        "--bind", default="127.0.0.1", help="listen address (0.0.0.0 inside a container)"
    )
    create.add_argument(
        "--wait", type=float, default=3600.0, help="seconds to wait for GitHub (default 3600)"
    )
    sync = gh.add_parser("sync", help="point the App's webhook here; report permission drift")
    sync.add_argument("--manifest", default="app-manifests/github-app.yml", help=manifest_help)
    redeliver = gh.add_parser("redeliver", help="ask GitHub again for failed webhook deliveries")
    redeliver.add_argument("--since", default="8h", help="how far back, e.g. 30m, 8h, 2d")
    redeliver.add_argument(
        "--include-refused",
        action="store_true",
        help="also those the bot answered with a 4xx (e.g. a bad signature before a sync)",
    )
    redeliver.set_defaults(every=True)
    for selecting in (sync, redeliver):
        selecting.add_argument("--app-id", type=int, help="which App, when several are configured")
        selecting.add_argument("--api-url", help="which host's App, when App IDs repeat")


def run(args: argparse.Namespace, settings: Settings, *, with_runtime: WithRuntime) -> int:
    """``aac github-app configure|link|create|sync|redeliver``."""
    if args.github_cmd == "configure":
        return _configure_github_app(args, settings, with_runtime)
    if args.github_cmd in ("create", "sync", "redeliver"):
        from providers.github import app_commands

        command: Callable[[argparse.Namespace, Settings, WithRuntime], int] = getattr(
            app_commands, args.github_cmd
        )
        return command(args, settings, with_runtime)
    if args.installation is None and args.org is None:
        return with_runtime(settings, _list_installations)
    if args.installation is None or args.org is None:
        raise CliError(
            "pass both --installation and --org to link, or neither to list installations",
            EXIT_USAGE,
        )
    return with_runtime(settings, lambda runtime: _link_installation(args, runtime))


async def _list_installations(runtime: CliRuntime) -> int:
    """Every stored installation, its App and account, and the organisation it publishes
    for, or that it is unlinked and how to link it."""
    from sqlalchemy import select

    from storage.models import GithubApp, Installation, Organization

    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                select(Installation, GithubApp, Organization.slug)
                .join(GithubApp, GithubApp.id == Installation.github_app_id)
                .outerjoin(Organization, Organization.id == Installation.org_id)
                .order_by(Installation.id)
            )
        ).all()
    if not rows:
        say("no installations yet: install the App on a GitHub account first")
    for row, app, slug in rows:
        state = " (uninstalled)" if row.deleted_at else " (suspended)" if row.suspended_at else ""
        link = (
            f"linked to {slug}"
            if slug
            else f"unlinked: `aac github-app link --installation {row.installation_id} "
            "--org SLUG` links it"
        )
        say(
            f"{row.installation_id}\t{row.account_login or '-'}\tApp {app.app_id} at "
            f"{app.api_url}\t{link}{state}"
        )
    return EXIT_OK


def checked_api_url(api_url: str, consequence: str) -> str:
    """``--api-url`` under the rule integration base URLs follow (storage/orgs.py): the App's
    JWT travels to it, so https:// only, http:// to this machine, no credentials in it."""
    try:
        return orgs.checked_base_url(api_url)
    except orgs.OrgError as exc:
        raise CliError(f"--api-url: {exc}; {consequence}", EXIT_USAGE) from None


def _configure_github_app(
    args: argparse.Namespace, settings: Settings, with_runtime: WithRuntime
) -> int:
    """Store an App's credentials. Without ``--slug`` the slug is asked from GitHub first
    (``GET /app`` with the App's JWT), which also proves the key belongs to the App ID:
    a refused key stores nothing."""
    from pathlib import Path

    from providers.base import AuthFailed, NotFound, ProviderError, Transient
    from providers.factory import ProviderShared
    from providers.github.app import check_private_key, configure_app
    from providers.github.provider import GithubAppClient

    if not args.webhook_secret_stdin:
        raise CliError("pass --webhook-secret-stdin and pipe the App's webhook secret in", 2)
    api_url = checked_api_url(args.api_url, "nothing stored")
    key_path = Path(args.private_key_file)
    try:
        pem = key_path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {key_path}: {exc.strerror}", EXIT_USAGE) from None
    try:
        check_private_key(pem)
    except ValueError as exc:
        raise CliError(f"{key_path}: {exc}", EXIT_USAGE) from None
    secret = sys.stdin.read().strip()
    if not secret:
        raise CliError("no webhook secret on stdin", EXIT_USAGE)

    async def ask_slug() -> str:
        shared = ProviderShared()
        try:
            client = GithubAppClient(
                app_id=args.app_id,
                private_key=pem,
                http=shared.http,
                shared=shared.github,
                api_url=api_url,
            )
            identity = await client.identity()
        except AuthFailed:
            raise CliError(
                f"GitHub at {api_url} refused the App's JWT: the private key in {key_path} "
                f"does not belong to App ID {args.app_id} (or the App ID is wrong); "
                "nothing stored",
                EXIT_USAGE,
            ) from None
        except NotFound:
            raise CliError(
                f"GitHub at {api_url} has no App API: is --api-url right (GitHub Enterprise "
                "Server: https://HOST/api/v3)? nothing stored",
                EXIT_USAGE,
            ) from None
        except Transient as exc:
            raise CliError(
                f"cannot reach GitHub at {api_url} ({exc}); nothing stored. Try again, or pass "
                "--slug to configure without asking GitHub"
            ) from None
        except ProviderError as exc:
            raise CliError(f"{exc}; nothing stored") from None
        finally:
            await shared.close()
        return identity.slug

    # Asked before the runtime opens: a refusal must leave the database and key file alone.
    slug: str = args.slug or asyncio.run(ask_slug())

    async def run(runtime: CliRuntime) -> int:
        async with runtime.sessions.begin() as session:
            app = await configure_app(
                session,
                runtime.vault,
                app_id=args.app_id,
                private_key_pem=pem,
                webhook_secret=secret,
                api_url=api_url,
                slug=slug,
            )
        say(f"GitHub App {app.app_id} ({slug}, bot {app.bot_login}) configured for {app.api_url}")
        linking = (
            "installations link to the organisation named like the account "
            "(AAC_GITHUB_AUTO_LINK, single-tenant only), or use `aac github-app link`"
            if settings.github_auto_link
            else "installations of an account an organisation claims (`aac org create SLUG "
            "--github-account LOGIN`) link to it; `aac github-app link` links any other"
        )
        say(
            f"next: point its webhook at {settings.public_url}/webhooks/github, then "
            f"install it; {linking}"
        )
        return EXIT_OK

    return with_runtime(settings, run)


async def _link_installation(args: argparse.Namespace, runtime: CliRuntime) -> int:
    """Read the installation from GitHub as its App, then map it to the organisation; any
    refusal or failure from GitHub changes nothing stored."""
    from providers.base import AuthFailed, NotFound, ProviderError, Transient
    from providers.factory import ProviderShared
    from providers.github.app import choose_app
    from providers.github.installations import link_installation
    from providers.github.provider import GithubAppClient
    from storage.models import GithubApp
    from storage.secret_fields import github_app_owner

    installation_id = args.installation
    wanted_url = None if args.api_url is None else checked_api_url(args.api_url, "nothing sent")
    async with runtime.sessions() as session:
        organisation = await orgs.get_org(session, args.org)
        try:
            app = await choose_app(session, app_id=args.app_id, api_url=wanted_url)
        except LookupError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        app_row_id, app_id = app.id, app.app_id
        # Stored before the rule existed, perhaps: checked again before the JWT goes there.
        api_url = checked_api_url(
            app.api_url, f"App {app_id} is stored with it: `aac github-app configure` it again"
        )
        key = runtime.vault.decrypt(app.private_key_enc, github_app_owner(app.id, "private_key"))
    shared = ProviderShared()
    try:
        client = GithubAppClient(
            app_id=app_id,
            private_key=key.reveal(),
            http=shared.http,
            shared=shared.github,
            api_url=api_url,
        )
        details = await client.installation(installation_id)
    except NotFound:
        raise CliError(
            f"GitHub App {app_id} at {api_url} has no installation {installation_id} (a wrong "
            "ID, uninstalled, or another App's: see --app-id); nothing changed",
            EXIT_USAGE,
        ) from None
    except AuthFailed as exc:
        raise CliError(
            f"GitHub at {api_url} refused App {app_id}'s credentials ({exc}); nothing changed. "
            "Check them with `aac github-app configure`"
        ) from None
    except Transient as exc:
        raise CliError(f"cannot reach GitHub at {api_url} ({exc}); nothing changed") from None
    except ProviderError as exc:
        raise CliError(f"{exc}; nothing changed") from None
    finally:
        await shared.close()
    async with runtime.sessions.begin() as session:
        app = await session.get_one(GithubApp, app_row_id)
        organisation = await orgs.get_org(session, args.org)
        await link_installation(session, app, details, organisation)
    account = details.account_login or "an unnamed account"
    if details.suspended:
        # GitHub mints no token for a suspended installation, so its repositories are unread.
        say(
            f"installation {installation_id} of {account} linked to {organisation.slug}; "
            "suspended; repositories will be read when it is unsuspended, and nothing is "
            "published until then"
        )
        return EXIT_OK
    count = len(details.repositories)
    say(
        f"installation {installation_id} of {account} "
        f"({count} {'repository' if count == 1 else 'repositories'}) now publishes for "
        f"{organisation.slug}"
    )
    return EXIT_OK


GROUP = CliGroup(NAME, add_parser, run)
