"""What each ``aac`` operator command does; bot/cli.py parses arguments and calls these."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, install_stop_signals, say
from bot.runtime import Runtime, build_runtime, service_loop_factory
from config.settings import Settings
from providers.cli import ensure_migrated
from storage import apikeys, orgs, queue
from storage.keyring_source import load_keys
from storage.migrate import current_revision, head_revision, schema_state, upgrade
from storage.models import Job
from storage.rotation import key_ids_in_use, rotate_all
from storage.vault import VaultError, generate_key_entry, prepend_key_to_file, write_key_file

T = TypeVar("T")


def _db_label(settings: Settings) -> str:
    return make_url(settings.database_url).render_as_string(hide_password=True)


def with_runtime(
    settings: Settings,
    body: Callable[[Runtime], Awaitable[T]],
    *,
    service: bool = False,
    creates_database: bool = False,
) -> T:
    """Run ``body`` with a runtime, mapping storage failures to one clear line; ``service``
    runs it on the faster event loop the web server and workers use. Only a command that
    ``creates_database`` may open a SQLite file that does not exist yet."""
    if not creates_database:
        if settings.secret_keys:
            load_keys(settings)  # a malformed key setting is named first; it touches no file
        _require_database_file(settings)

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


def _require_database_file(settings: Settings) -> None:
    """Refuse to go on when the SQLite file is missing: opening it would create an empty one
    wherever the command happened to run (a stray ./aac.db beside the user's work)."""
    path = settings.sqlite_path
    if path is None or path.exists():
        return
    raise CliError(
        f"no database at {path.resolve()}: run `aac db upgrade` (or `aac serve`) there to "
        "create it, or set AAC_DATABASE_URL to the database you meant",
        EXIT_USAGE,
    )


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """The web app on granian, in ``--processes`` processes each with its own worker."""
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    host = args.host or settings.host
    port = args.port or settings.port

    # Creates the database (and the embedded key file) up front.
    with_runtime(settings, ensure_migrated, creates_database=True)
    _ensure_port_free(host, port)
    node = None
    if getattr(args, "local_runner", None) is not None:
        from bot.runner.local import start_local_runner

        node = start_local_runner(
            settings, args.local_runner or None, f"http://{host}:{port}", Path("aac-runner-work")
        )
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
    server = Granian(
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
    )
    try:
        server.serve()
    finally:
        if node is not None:
            from bot.runner.local import stop_local_runner

            stop_local_runner(node)
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
    from bot.jobs import job_handlers, periodic_jobs
    from bot.worker import Worker, WorkerConfig, listen_dsn_for

    async def run(runtime: Runtime) -> None:
        await ensure_migrated(runtime)
        stop = asyncio.Event()
        install_stop_signals(stop)
        config = WorkerConfig(
            concurrency=args.concurrency or settings.worker_concurrency,
            lease_seconds=settings.job_lease_seconds,
            poll_interval=settings.worker_poll_interval,
            periodic=periodic_jobs(settings),
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

    with_runtime(settings, run, service=True)
    return EXIT_OK


async def _announce_stop(stop: asyncio.Event, grace: float) -> None:
    await stop.wait()
    say(f"stopping: finishing jobs in hand (up to {grace:g} s), releasing the rest", sys.stderr)


def db(args: argparse.Namespace, settings: Settings) -> int:
    """``aac db status`` and ``aac db upgrade``: never a downgrade, never past a newer release."""

    async def run(runtime: Runtime) -> int:
        before = await current_revision(runtime.engine)
        head = head_revision()
        state = schema_state(before)
        if args.db_cmd == "status":
            if state == "ahead":
                say(f"database {before}, code {head}: the database is {_ahead(before)}")
            else:
                pending = "up to date" if state == "current" else "migrations pending"
                say(f"database {before or 'empty'}, code {head}: {pending}")
            return EXIT_OK
        if state == "ahead":
            # Alembic cannot walk from a revision it has no script for, and going back would
            # drop what the newer release relies on; this version runs on it as it is.
            raise CliError(
                f"refusing to upgrade: the database is {_ahead(before)}; this version never "
                "downgrades",
                EXIT_USAGE,
            )
        if state == "current":
            say(f"database already at {head}; nothing to do")
            return EXIT_OK
        await upgrade(runtime.engine)
        say(f"database upgraded {before or 'empty'} -> {head}")
        return EXIT_OK

    return with_runtime(settings, run, creates_database=args.db_cmd == "upgrade")


def _ahead(revision: str | None) -> str:
    return f"ahead of this version (revision {revision}, unknown here; a newer aac-bot migrated it)"


def cycles(args: argparse.Namespace, settings: Settings) -> int:
    """``aac cycles open ID``: a fresh signed link to the cycle's report page; ``aac cycles
    run``: start a manual suite at a commit."""
    if args.cycles_cmd == "run":
        from bot.manual_command import run_manual

        return with_runtime(settings, lambda runtime: run_manual(args, runtime))
    from bot.links import signed_report_url
    from storage.models import TestCycle

    async def run(runtime: Runtime) -> int:
        cycle_id = args.cycle_id.strip()
        async with runtime.sessions() as session:
            cycle = await session.get(TestCycle, cycle_id) if len(cycle_id) <= 32 else None
        if cycle is None:
            raise CliError(
                f"no cycle {cycle_id!r} in {_db_label(settings)}; the id is in `aac report`'s "
                "output and in GET /api/v1/cycles",
                EXIT_USAGE,
            )
        ttl = args.days * 24 * 3600
        say(signed_report_url(settings.public_url, runtime.vault.keyring, cycle.id, ttl=ttl))
        say(
            f"valid for {args.days} day(s) for anyone who has it; links on {settings.public_url}"
            " (AAC_PUBLIC_URL)",
            sys.stderr,
        )
        return EXIT_OK

    return with_runtime(settings, run)


def org(args: argparse.Namespace, settings: Settings) -> int:
    async def run(runtime: Runtime) -> int:
        async with runtime.sessions.begin() as session:
            if args.org_cmd == "create":
                created = await orgs.create_org(
                    session, args.slug, args.name, github_accounts=args.github_account
                )
                claimed = ", ".join(created.scm_claims.get("github", []))
                say(
                    f"created organisation {created.slug}"
                    + (f"; GitHub App installations of {claimed} link to it" if claimed else "")
                )
                say(f"next: aac apikey create --org {created.slug}")
                return EXIT_OK
            found = await orgs.list_orgs(session)
            if not found:
                say("no organisations yet; create one with `aac org create SLUG`")
            for item in found:
                providers = ",".join(sorted(item.integrations)) or "-"
                say(f"{item.slug}\t{item.name}\tintegrations: {providers}")
            return EXIT_OK

    return with_runtime(settings, run)


def apikey(args: argparse.Namespace, settings: Settings) -> int:
    async def run(runtime: Runtime) -> int:
        async with runtime.sessions.begin() as session:
            organisation = await orgs.get_org(session, args.org)
            row, full = await apikeys.create_api_key(
                session, organisation, args.name, args.scope or apikeys.DEFAULT_SCOPES
            )
        say(full)
        say(
            f"created API key {row.prefix} for {args.org} with scope {row.scopes}; "
            "it is shown only now: "
            "store it in your CI's secret store (e.g. as AAC_API_KEY)",
            sys.stderr,
        )
        return EXIT_OK

    return with_runtime(settings, run)


def integration(args: argparse.Namespace, settings: Settings) -> int:
    token, secret = _read_secrets(args)
    generated = args.generate_webhook_secret
    if generated:
        if secret is not None:
            raise CliError(
                "pass either --webhook-secret-stdin or --generate-webhook-secret, not both",
                EXIT_USAGE,
            )
        secret = secrets.token_urlsafe(32)

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
        if generated:
            # Shown this once: only its ciphertext is stored.
            say(f"webhook secret: {secret}")
            say(f"next: {_webhook_hint(args.provider, args.org, settings)}", sys.stderr)
        return EXIT_OK

    return with_runtime(settings, run)


def _webhook_hint(source: str, org_slug: str, settings: Settings) -> str:
    """Where the generated secret goes: the SCM's hook for this organisation's URL."""
    from providers.registry import package_for

    package = package_for(source)
    where = ""
    if package is not None and package.webhook.per_org:
        where = f", with URL {settings.public_url}{package.webhook.path}/{org_slug}"
    return f"put it in the {source} webhook's secret token field{where}; it is not shown again"


def _read_secrets(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if not (
        args.token_stdin
        or args.webhook_secret_stdin
        or args.generate_webhook_secret
        or args.base_url
        or args.disable
    ):
        raise CliError(
            "nothing to set: pass --token-stdin (and pipe the token in), "
            "--webhook-secret-stdin, --generate-webhook-secret or --base-url",
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
        _require_database_file(settings)  # no key file for a database that is not there
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
        if report.unreadable:
            say(
                f"{len(report.unreadable)} value(s) decrypt with no key in the keyring and were "
                f"left as they are: {', '.join(report.unreadable)}. Add the key they were "
                "sealed with and run `aac keys rotate` again, or store them anew (e.g. "
                "`aac integration set`, `aac github-app configure`)",
                sys.stderr,
            )
            return EXIT_FAILED
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

    return with_runtime(settings, run)


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

    return with_runtime(settings, run)


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
