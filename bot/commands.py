"""What each ``aac`` operator command does; bot/cli.py parses arguments and calls these."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import EXIT_OK, EXIT_USAGE, CliError, install_stop_signals, say
from bot.runtime import Runtime, build_runtime, service_loop_factory
from config.settings import Settings
from storage import apikeys, orgs, queue
from storage.migrate import current_revision, head_revision, upgrade
from storage.models import Job
from storage.rotation import key_ids_in_use, rotate_all
from storage.vault import VaultError, generate_key_entry, prepend_key_to_file, write_key_file

T = TypeVar("T")


def _db_label(settings: Settings) -> str:
    return make_url(settings.database_url).render_as_string(hide_password=True)


def _with_runtime(
    settings: Settings, body: Callable[[Runtime], Awaitable[T]], *, service: bool = False
) -> T:
    """Run ``body`` with a runtime, mapping storage failures to one clear line; ``service``
    runs it on the faster event loop the web server and workers use."""

    async def run() -> T:
        runtime = build_runtime(settings)
        try:
            return await body(runtime)
        finally:
            await runtime.close()

    try:
        factory = service_loop_factory() if service else None
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(run())
    except (OperationalError, DBAPIError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        raise CliError(f"cannot use the database {_db_label(settings)}: {reason}") from None
    except orgs.OrgError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except VaultError as exc:
        raise CliError(f"vault: {exc}") from None


async def _ensure_migrated(runtime: Runtime) -> None:
    current, head = await current_revision(runtime.engine), head_revision()
    if current == head:
        return
    if runtime.settings.is_sqlite:
        say(f"applying database migrations ({current or 'empty'} -> {head}) ...", sys.stderr)
        await upgrade(runtime.engine)
        return
    raise CliError(
        f"the database is at revision {current or 'none'}, the code needs {head}: "
        "run `aac db upgrade` once, then start the service"
    )


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """The web app on granian, in ``--processes`` processes each with its own worker."""
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    host = args.host or settings.host
    port = args.port or settings.port

    _with_runtime(settings, _ensure_migrated)  # also creates the embedded key file, up front
    _ensure_port_free(host, port)
    # Each web process builds its app from the environment (bot/asgi.py).
    if args.no_worker:
        os.environ["AAC_SERVE_NO_WORKER"] = "1"
    if args.processes == 1:
        shape = "1 process" + ("" if args.no_worker else " with a worker")
    else:
        shape = f"{args.processes} processes" + ("" if args.no_worker else ", a worker in each")
    say(
        f"aac-bot listening on http://{host}:{port} ({shape}; database {_db_label(settings)})",
        sys.stderr,
    )
    Granian(
        "bot.asgi:create_from_environment",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=args.processes,
        loop=Loops.uvloop,
        websockets=False,
        backlog=2048,
        log_level=LogLevels.warning,
        log_access=False,
        respawn_failed_workers=True,
    ).serve()
    return EXIT_OK


def _ensure_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on. granian binds with SO_REUSEPORT, so a second
    `aac serve` (maybe on another database) would otherwise share the webhooks silently."""
    import socket

    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as probe:
            # Lingering TIME_WAIT connections of a previous run are no reason to refuse.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CliError(
            f"cannot listen on {host}:{port}: {reason}. Is another `aac serve` running? "
            "Stop it, or choose another port with --port or AAC_PORT."
        ) from None


def worker(args: argparse.Namespace, settings: Settings) -> int:
    from bot.jobs import job_handlers
    from bot.worker import Worker, WorkerConfig, listen_dsn_for

    async def run(runtime: Runtime) -> None:
        await _ensure_migrated(runtime)
        stop = asyncio.Event()
        install_stop_signals(stop)
        config = WorkerConfig(
            concurrency=args.concurrency or settings.worker_concurrency,
            lease_seconds=settings.job_lease_seconds,
            poll_interval=settings.worker_poll_interval,
        )
        instance = Worker(
            runtime.sessions,
            job_handlers(runtime),
            config,
            listen_dsn=listen_dsn_for(settings.database_url),
        )
        say(f"worker {instance.worker_id} started (database {_db_label(settings)})", sys.stderr)
        announce = asyncio.create_task(_announce_stop(stop, config.shutdown_grace))
        await instance.run(stop)
        announce.cancel()
        say(
            f"worker {instance.worker_id} stopped cleanly after {instance.processed} job(s)",
            sys.stderr,
        )

    _with_runtime(settings, run, service=True)
    return EXIT_OK


async def _announce_stop(stop: asyncio.Event, grace: float) -> None:
    await stop.wait()
    say(f"stopping: finishing jobs in hand (up to {grace:g} s), releasing the rest", sys.stderr)


def db(args: argparse.Namespace, settings: Settings) -> int:
    async def run(runtime: Runtime) -> int:
        before = await current_revision(runtime.engine)
        head = head_revision()
        if args.db_cmd == "status":
            state = "up to date" if before == head else "migrations pending"
            say(f"database {before or 'empty'}, code {head}: {state}")
            return EXIT_OK
        if before == head:
            say(f"database already at {head}; nothing to do")
            return EXIT_OK
        await upgrade(runtime.engine)
        say(f"database upgraded {before or 'empty'} -> {head}")
        return EXIT_OK

    return _with_runtime(settings, run)


def org(args: argparse.Namespace, settings: Settings) -> int:
    async def run(runtime: Runtime) -> int:
        async with runtime.sessions.begin() as session:
            if args.org_cmd == "create":
                created = await orgs.create_org(session, args.slug, args.name)
                say(f"created organisation {created.slug}")
                say(f"next: aac apikey create --org {created.slug}")
                return EXIT_OK
            found = await orgs.list_orgs(session)
            if not found:
                say("no organisations yet; create one with `aac org create SLUG`")
            for item in found:
                providers = ",".join(sorted(item.integrations)) or "-"
                say(f"{item.slug}\t{item.name}\tintegrations: {providers}")
            return EXIT_OK

    return _with_runtime(settings, run)


def apikey(args: argparse.Namespace, settings: Settings) -> int:
    async def run(runtime: Runtime) -> int:
        async with runtime.sessions.begin() as session:
            organisation = await orgs.get_org(session, args.org)
            row, full = await apikeys.create_api_key(session, organisation, args.name)
        say(full)
        say(
            f"created API key {row.prefix} for {args.org}; it is shown only now: "
            "store it in your CI's secret store (e.g. as AAC_API_KEY)",
            sys.stderr,
        )
        return EXIT_OK

    return _with_runtime(settings, run)


def integration(args: argparse.Namespace, settings: Settings) -> int:
    token, secret = _read_secrets(args)

    async def run(runtime: Runtime) -> int:
        async with runtime.sessions.begin() as session:
            organisation = await orgs.get_org(session, args.org)
            await orgs.set_integration(
                session,
                runtime.vault,
                organisation,
                args.provider,
                token=token,
                webhook_secret=secret,
                base_url=args.base_url,
                enabled=not args.disable,
            )
        stored = [n for n, v in (("token", token), ("webhook secret", secret)) if v] or ["settings"]
        say(f"{args.provider} integration of {args.org} updated ({' and '.join(stored)} stored)")
        return EXIT_OK

    return _with_runtime(settings, run)


def _read_secrets(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if not (args.token_stdin or args.webhook_secret_stdin or args.base_url or args.disable):
        raise CliError(
            "nothing to set: pass --token-stdin (and pipe the token in), "
            "--webhook-secret-stdin or --base-url",
            EXIT_USAGE,
        )
    lines = sys.stdin.read().splitlines() if args.token_stdin or args.webhook_secret_stdin else []
    lines = [line.strip() for line in lines if line.strip()]
    wanted = int(args.token_stdin) + int(args.webhook_secret_stdin)
    if len(lines) < wanted:
        raise CliError(
            f"expected {wanted} non-empty line(s) on stdin, got {len(lines)}; "
            "e.g. `printf '%s\\n' \"$TOKEN\" | aac integration set ...`",
            EXIT_USAGE,
        )
    token = lines.pop(0) if args.token_stdin else None
    secret = lines.pop(0) if args.webhook_secret_stdin else None
    return token, secret


def keys(args: argparse.Namespace, settings: Settings) -> int:
    from storage.keyring_source import key_file_path

    if args.keys_cmd == "generate":
        try:
            entry = generate_key_entry(args.id)
        except VaultError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        if not args.add_to_key_file:
            say(entry)
            say(
                "put it FIRST in AAC_SECRET_KEYS (id:key,old-id:old-key) on every process, "
                "then run `aac keys rotate`",
                sys.stderr,
            )
            return EXIT_OK
        path = key_file_path(settings)
        if settings.secret_keys or path is None:
            raise CliError("--add-to-key-file is for the embedded key file; unset AAC_SECRET_KEYS")
        prepend_key_to_file(path, entry)
        say(f"added key {entry.split(':', 1)[0]} to {path}; next: aac keys rotate", sys.stderr)
        return EXIT_OK

    async def run(runtime: Runtime) -> int:
        report = await rotate_all(
            runtime.sessions, runtime.vault, progress=lambda line: say(line, sys.stderr)
        )
        current = runtime.vault.keyring.current_id
        say(
            f"rotation done: {report.rotated} value(s) re-encrypted, "
            f"{report.already_current} already under key {current}"
        )
        in_use = await key_ids_in_use(runtime.sessions)
        unused = [k for k in runtime.vault.keyring.key_ids if k not in in_use and k != current]
        if unused and args.drop_old_keys and runtime.keys.key_file is not None:
            spec = runtime.keys.key_file.read_text().strip()
            kept = ",".join(e for e in spec.split(",") if e.split(":", 1)[0] not in unused)
            write_key_file(runtime.keys.key_file, kept)
            say(f"removed unused key(s) {', '.join(unused)} from {runtime.keys.key_file}")
        elif unused:
            say(f"no stored value uses key(s) {', '.join(unused)} any more; you may remove them")
        return EXIT_OK

    return _with_runtime(settings, run)


def jobs(args: argparse.Namespace, settings: Settings) -> int:
    async def run(runtime: Runtime) -> int:
        async with runtime.sessions.begin() as session:
            if args.jobs_cmd == "retry":
                await _retry_dead(session, args.job_id)
                say(f"job {args.job_id} re-queued")
                return EXIT_OK
            status = "dead" if args.dead else args.status
            found = await queue.list_jobs(session, status=status, limit=args.limit)
            if not found:
                say(f"no {status or ''} jobs".replace("  ", " "))
            for job in found:
                error = (job.last_error or "").splitlines()[0][:120] if job.last_error else ""
                say(
                    f"{job.id}\t{job.kind}\t{job.status}\tattempts {job.attempts}/"
                    f"{job.max_attempts}\t{job.run_at.isoformat(timespec='seconds')}\t{error}"
                )
            return EXIT_OK

    return _with_runtime(settings, run)


async def _retry_dead(session: AsyncSession, job_id: int) -> None:
    """Re-queue a dead job, or say why not (nothing changes then)."""
    job = await session.get(Job, job_id)
    if job is None:
        raise CliError(f"no job {job_id}; see `aac jobs list --dead`", EXIT_USAGE)
    if job.status != queue.JobStatus.DEAD:
        raise CliError(
            f"job {job_id} is {job.status}, not dead: only dead jobs can be retried", EXIT_USAGE
        )
    try:
        retried = await queue.retry_dead(session, job_id)
    except queue.AlreadyQueued as exc:
        queued = "under the same key" if exc.duplicate is None else f"as job {exc.duplicate}"
        raise CliError(
            f"job {job_id} is already queued again {queued}; nothing to retry", EXIT_USAGE
        ) from None
    if not retried:
        raise CliError(f"job {job_id} is no longer dead (retried meanwhile?)", EXIT_USAGE)


def github_app(args: argparse.Namespace, settings: Settings) -> int:
    if args.github_cmd == "configure":
        return _configure_github_app(args, settings)
    if args.github_cmd in ("create", "sync", "redeliver"):
        from bot import github_app_commands

        command: Callable[[argparse.Namespace, Settings], int] = getattr(
            github_app_commands, args.github_cmd
        )
        return command(args, settings)
    return _with_runtime(settings, lambda runtime: _link_installation(args, runtime))


def _checked_api_url(api_url: str, consequence: str) -> str:
    """``--api-url`` under the rule integration base URLs follow (storage/orgs.py): the App's
    JWT travels to it, so https:// only, http:// to this machine, no credentials in it."""
    try:
        return orgs.checked_base_url(api_url)
    except orgs.OrgError as exc:
        raise CliError(f"--api-url: {exc}; {consequence}", EXIT_USAGE) from None


def _configure_github_app(args: argparse.Namespace, settings: Settings) -> int:
    """Store an App's credentials. Without ``--slug`` the slug is asked from GitHub first
    (``GET /app`` with the App's JWT), which also proves the key belongs to the App ID:
    a refused key stores nothing."""
    from pathlib import Path

    from bot.github_app import check_private_key, configure_app
    from providers.base import AuthFailed, NotFound, ProviderError, Transient
    from providers.factory import ProviderShared
    from providers.github import GithubAppClient

    if not args.webhook_secret_stdin:
        raise CliError("pass --webhook-secret-stdin and pipe the App's webhook secret in", 2)
    api_url = _checked_api_url(args.api_url, "nothing stored")
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

    async def run(runtime: Runtime) -> int:
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
            "installations link to the organisation named like the account, or use "
            "`aac github-app link`"
            if settings.github_auto_link
            else "link each installation with `aac github-app link`"
        )
        say(
            f"next: point its webhook at {settings.public_url}/webhooks/github, then "
            f"install it; {linking}"
        )
        return EXIT_OK

    return _with_runtime(settings, run)


async def _link_installation(args: argparse.Namespace, runtime: Runtime) -> int:
    """Read the installation from GitHub as its App, then map it to the organisation; any
    refusal or failure from GitHub changes nothing stored."""
    from bot.github_app import choose_app
    from bot.handlers.installation import link_installation
    from providers.base import AuthFailed, NotFound, ProviderError, Transient
    from providers.factory import ProviderShared
    from providers.github import GithubAppClient
    from storage.models import GithubApp
    from storage.secret_fields import github_app_owner

    installation_id = args.installation
    wanted_url = None if args.api_url is None else _checked_api_url(args.api_url, "nothing sent")
    async with runtime.sessions() as session:
        organisation = await orgs.get_org(session, args.org)
        try:
            app = await choose_app(session, app_id=args.app_id, api_url=wanted_url)
        except LookupError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        app_row_id, app_id = app.id, app.app_id
        # Stored before the rule existed, perhaps: checked again before the JWT goes there.
        api_url = _checked_api_url(
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
