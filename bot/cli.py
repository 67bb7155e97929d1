"""The ``aac`` command: serve, worker, database, organisations, keys, jobs and ``aac report``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from config.settings import Settings, SettingsError, load_settings, misspelt_variables

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A message for the user and an exit code; never a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aac", description="aac-bot: test results, analysed, back on the pull request."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web app with an in-process worker")
    serve.add_argument("--host", help="listen address (default AAC_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default AAC_PORT or 8000)")
    serve.add_argument("--no-worker", action="store_true", help="web only; run `aac worker` apart")
    serve.add_argument(
        "--processes",
        type=int,
        default=1,
        choices=range(1, 65),
        metavar="N",
        help="web processes sharing the port (default 1)",
    )

    worker = sub.add_parser("worker", help="run a worker only (scale out beside `aac serve`)")
    worker.add_argument("--concurrency", type=int, help="jobs in flight (AAC_WORKER_CONCURRENCY)")

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_cmd", required=True)
    db.add_parser("upgrade", help="apply pending migrations")
    db.add_parser("status", help="show the database and code revisions")

    org = sub.add_parser("org", help="organisations").add_subparsers(dest="org_cmd", required=True)
    org_create = org.add_parser("create", help="create an organisation")
    org_create.add_argument("slug")
    org_create.add_argument("--name")
    org.add_parser("list", help="list organisations")

    apikey = sub.add_parser("apikey", help="CI API keys").add_subparsers(
        dest="apikey_cmd", required=True
    )
    apikey_create = apikey.add_parser("create", help="create an API key (shown once)")
    apikey_create.add_argument("--org", required=True)
    apikey_create.add_argument("--name", default="")

    integration = sub.add_parser("integration", help="SCM credentials").add_subparsers(
        dest="integration_cmd", required=True
    )
    iset = integration.add_parser("set", help="set an organisation's SCM token (read from stdin)")
    iset.add_argument("provider", choices=["github", "gitlab", "azure", "llm"])
    iset.add_argument("--org", required=True)
    iset.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    iset.add_argument(
        "--webhook-secret-stdin",
        action="store_true",
        help="read the webhook secret from stdin (the line after the token when both are given)",
    )
    iset.add_argument("--base-url", help="self-hosted API URL (GHES, GitLab, Azure DevOps Server)")
    iset.add_argument(
        "--disable", action="store_true", help="keep the settings but stop using them"
    )

    keys = sub.add_parser("keys", help="vault keys").add_subparsers(dest="keys_cmd", required=True)
    gen = keys.add_parser("generate", help="print a new key entry for AAC_SECRET_KEYS")
    gen.add_argument("--id", help="key id (default: random)")
    gen.add_argument(
        "--add-to-key-file",
        action="store_true",
        help="make it the current key of the embedded key file (then run `aac keys rotate`)",
    )
    rotate = keys.add_parser("rotate", help="re-encrypt every stored secret under the current key")
    rotate.add_argument(
        "--drop-old-keys",
        action="store_true",
        help="afterwards remove unused old keys from the embedded key file",
    )

    jobs = sub.add_parser("jobs", help="background jobs").add_subparsers(
        dest="jobs_cmd", required=True
    )
    jlist = jobs.add_parser("list", help="list jobs, newest first")
    jlist.add_argument("--dead", action="store_true", help="only jobs that ran out of attempts")
    jlist.add_argument("--status", choices=["queued", "running", "done", "dead"])
    jlist.add_argument("--limit", type=int, default=50)
    jretry = jobs.add_parser("retry", help="re-queue a dead job")
    jretry.add_argument("job_id", type=int)

    gh = sub.add_parser("github-app", help="the GitHub App").add_subparsers(
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
        "link", help="map an installation to an organisation (reads it from GitHub)"
    )
    link.add_argument("--installation", type=int, required=True)
    link.add_argument("--org", required=True)
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

    from bot.reporter.command import add_report_arguments

    report = sub.add_parser("report", help="upload test results from a CI job")
    add_report_arguments(report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aac`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "report":
            from bot.reporter.command import run_report

            code: int = asyncio.run(
                run_report(args, environ=os.environ, out=sys.stdout, err=sys.stderr)
            )
            return code
        settings = load_settings(os.environ)
        from bot.log import configure_logging

        configure_logging(settings.log_level, settings.log_format)
        for line in misspelt_variables(os.environ):
            logging.getLogger("aac.config").warning(line)
        return _dispatch(args, settings)
    except SettingsError as exc:
        print(f"aac: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"aac: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from bot import commands

    table: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "serve": commands.serve,
        "worker": commands.worker,
        "db": commands.db,
        "org": commands.org,
        "apikey": commands.apikey,
        "integration": commands.integration,
        "keys": commands.keys,
        "jobs": commands.jobs,
        "github-app": commands.github_app,
    }
    return table[args.command](args, settings)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` so workers finish or release their jobs."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def say(message: str, stream: TextIO | None = None) -> None:
    print(message, file=stream or sys.stdout, flush=True)
