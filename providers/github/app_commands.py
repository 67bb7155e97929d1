"""``aac github-app create|sync|redeliver``: the App from its manifest file, kept in step."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from config.settings import Settings
from providers.base import ProviderError
from providers.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, ensure_migrated, say
from providers.github.app import AppCredentials, choose_app, configure_app, load_apps
from providers.github.auth import utc_now
from providers.github.cli import checked_api_url
from providers.github.hook_admin import AppHookAdmin, drift, settings_url
from providers.github.manifest import (
    AppManifest,
    CreatedApp,
    ManifestError,
    ManifestFlow,
    ManifestFlowError,
    exchange_code,
    github_host,
    load_manifest,
)
from providers.github.provider import GitHubClient
from providers.github.redeliver import AppRedelivery, parse_duration, redeliver_for_apps
from providers.registry import CliRuntime, WithRuntime
from providers.shared import ProviderShared
from storage.vault import VaultError


def _manifest(args: argparse.Namespace, settings: Settings) -> AppManifest:
    try:
        return load_manifest(Path(args.manifest), public_url=settings.public_url)
    except ManifestError as exc:
        raise CliError(f"{exc}; pass the App manifest with --manifest PATH", EXIT_USAGE) from None


async def _migrated(runtime: CliRuntime) -> int:
    await ensure_migrated(runtime)
    return EXIT_OK


def create(args: argparse.Namespace, settings: Settings, with_runtime: WithRuntime) -> int:
    """Register a new App through GitHub's manifest flow and store its credentials."""
    manifest = _manifest(args, settings)
    web_url = checked_api_url(args.github_url, "nothing sent").rstrip("/")
    host = github_host(web_url)
    # Fails here, before GitHub creates anything, when the database cannot take the App.
    with_runtime(settings, _migrated)

    async def run(runtime: CliRuntime) -> int:
        shared = ProviderShared()
        gh = GitHubClient(shared.http, requester="aac-bot", base_url=host.api_url)

        async def exchange(code: str) -> CreatedApp:
            created = await exchange_code(gh, code, now=utc_now())
            await _store_created(runtime, created, host.api_url)
            return created

        try:
            flow = ManifestFlow(
                manifest, host, exchange=exchange, org=args.org, bind=args.bind, port=args.port
            )
            owner = f"organisation {args.org}" if args.org else "your personal account"
            say(
                f"open {flow.form_url} in a browser on this machine to register the App for "
                f"{owner} on {host.web_url} (from elsewhere: ssh -L {flow.port}:127.0.0.1:"
                f"{flow.port} THIS-HOST first); waiting up to {args.wait:g} s ...",
                sys.stderr,
            )
            created = await flow.run(args.wait)
        except ManifestFlowError as exc:
            raise CliError(str(exc)) from None
        finally:
            await shared.close()
        say(
            f"GitHub App {created.app_id} ({created.slug}) registered on {host.web_url}; its "
            "private key, webhook secret and client secret are stored encrypted"
        )
        if not created.webhook_secret:
            say("GitHub sent no webhook secret: one was generated; run `aac github-app sync`")
        say(f"next: install it on your repositories: {created.install_url}")
        return EXIT_OK

    return with_runtime(settings, run)


async def _store_created(runtime: CliRuntime, created: CreatedApp, api_url: str) -> None:
    webhook_secret = created.webhook_secret or secrets.token_hex(32)
    try:
        async with runtime.sessions.begin() as session:
            await configure_app(
                session,
                runtime.vault,
                app_id=created.app_id,
                private_key_pem=created.private_key,
                webhook_secret=webhook_secret,
                api_url=api_url,
                slug=created.slug,
                client_id=created.client_id,
                client_secret=created.client_secret,
            )
    except (SQLAlchemyError, VaultError, ValueError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        raise ManifestFlowError(
            f"GitHub registered App {created.app_id} but storing its credentials failed "
            f"({reason}); delete it at {created.html_url} and run `aac github-app create` again"
        ) from None


async def _chosen_apps(runtime: CliRuntime, args: argparse.Namespace) -> list[AppCredentials]:
    """The App ``--app-id``/``--api-url`` name; every App when neither is given and ``every``."""
    wanted_url = None if args.api_url is None else checked_api_url(args.api_url, "nothing sent")
    async with runtime.sessions() as session:
        apps = await load_apps(session, runtime.vault)
        if getattr(args, "every", False) and args.app_id is None and wanted_url is None:
            if not apps:
                raise CliError("no GitHub App is configured; run `aac github-app create` first")
            return apps
        try:
            row = await choose_app(session, app_id=args.app_id, api_url=wanted_url)
        except LookupError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    return [app for app in apps if app.row_id == row.id]


def sync(args: argparse.Namespace, settings: Settings, with_runtime: WithRuntime) -> int:
    """Point the App's webhook at this deployment; report how the App drifted from its file."""
    manifest = _manifest(args, settings)

    async def run(runtime: CliRuntime) -> int:
        [app] = await _chosen_apps(runtime, args)
        shared = ProviderShared()
        admin = AppHookAdmin(
            app_id=app.app_id,
            private_key=app.private_key.reveal(),
            http=shared.http,
            api_url=app.api_url,
        )
        try:
            await admin.set_hook(url=manifest.hook_url, secret=app.webhook_secret.reveal())
            described = await admin.app()
        except ProviderError as exc:
            raise CliError(
                f"{exc}; check the App's credentials with `aac github-app configure`"
            ) from None
        finally:
            await shared.close()
        say(
            f"App {app.app_id}'s webhook now delivers JSON to {manifest.hook_url}, signed with "
            "the stored secret"
        )
        found = drift(manifest, described)
        if found.none:
            say("its permissions and events match the manifest")
            return EXIT_OK
        for line in found.lines():
            say(f"drift: {line}")
        say(
            "GitHub lets only a person change an App's permissions and events (and each "
            f"installation accepts raised ones): {settings_url(app.api_url, described)}"
        )
        return EXIT_OK

    return with_runtime(settings, run)


def redeliver(args: argparse.Namespace, settings: Settings, with_runtime: WithRuntime) -> int:
    """Ask GitHub again for each delivery that failed within ``--since``."""
    try:
        window = parse_duration(args.since)
    except ValueError as exc:
        raise CliError(f"--since: {exc}", EXIT_USAGE) from None

    async def run(runtime: CliRuntime) -> int:
        apps = await _chosen_apps(runtime, args)
        shared = ProviderShared()
        try:
            results = await redeliver_for_apps(
                apps, shared.http, window=window, include_refused=args.include_refused
            )
        finally:
            await shared.close()
        return max((_say_redelivery(result, args.since) for result in results), default=EXIT_OK)

    return with_runtime(settings, run)


def _say_redelivery(result: AppRedelivery, window: str) -> int:
    label = f"App {result.app_id} at {result.api_url}"
    report = result.report
    if report is None:
        say(f"{label}: {result.error}; nothing redelivered", sys.stderr)
        return EXIT_FAILED
    say(
        f"{label}: {report.seen} delivery attempt(s) in the last {window}, "
        f"{len(report.redelivered)} failed one(s) redelivered"
        + (f", {report.capped} left for the next run" if report.capped else "")
    )
    for item, reason in report.failed:
        say(f"{label}: delivery {item.id} ({item.event}) not redelivered: {reason}", sys.stderr)
    return EXIT_FAILED if report.failed else EXIT_OK
