"""The ``aac`` command: serve, worker, database, organisations, keys, jobs and ``aac report``."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from config.settings import Settings, SettingsError, load_settings, misspelt_variables
from providers.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, say

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "CliError", "main", "say"]


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
        "--local-runner",
        nargs="?",
        const="",
        metavar="ORG",
        help="also start one testing node as a child process (for ORG, or the only organisation)",
    )
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
    org_create.add_argument(
        "--github-account",
        action="append",
        default=[],
        metavar="LOGIN",
        help="a GitHub account (user or organisation) whose App installations link to this "
        "organisation on their own; repeatable. Others wait for `aac github-app link`",
    )
    org.add_parser("list", help="list organisations")

    apikey = sub.add_parser("apikey", help="CI API keys").add_subparsers(
        dest="apikey_cmd", required=True
    )
    apikey_create = apikey.add_parser("create", help="create an API key (shown once)")
    apikey_create.add_argument("--org", required=True)
    apikey_create.add_argument("--name", default="")
    apikey_create.add_argument(
        "--scope",
        action="append",
        choices=API_KEY_SCOPES,
        help="report: create cycles and upload; read: read cycles and reports; run: start "
        "manual suites on testing nodes (repeatable; default: report and read)",
    )

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
    iset.add_argument(
        "--generate-webhook-secret",
        action="store_true",
        help="generate a webhook secret, store it and print it once (for the SCM's hook)",
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

    cycles = sub.add_parser("cycles", help="test cycles").add_subparsers(
        dest="cycles_cmd", required=True
    )
    cycle_open = cycles.add_parser("open", help="print a fresh signed link to a cycle's report")
    cycle_open.add_argument("cycle_id", metavar="ID")
    cycle_open.add_argument(
        "--days", type=int, default=90, choices=range(1, 367), metavar="N", help="valid for (90)"
    )
    cycle_run = cycles.add_parser(
        "run", help="start a suite with the manual trigger at a commit (as `/aac run SUITE`)"
    )
    cycle_run.add_argument("--repo", required=True, metavar="OWNER/NAME")
    cycle_run.add_argument("--sha", required=True, help="the commit to run the suite at")
    cycle_run.add_argument("--suite", required=True, help="a suite of .aac.yml with `manual`")
    cycle_run.add_argument(
        "--source", default="github", help="the SCM package: github, gitlab, azure (github)"
    )
    cycle_run.add_argument(
        "--org", help="the organisation (default: the one whose cycles name the repository)"
    )
    cycle_run.add_argument(
        "--host", help="the SCM's API host (default: where the organisation's credentials point)"
    )

    from providers.registry import cli_groups

    for group in cli_groups():
        group.add_parser(sub)

    from bot.reporter.command import add_report_arguments
    from bot.runner.command import add_runner_arguments

    add_runner_arguments(sub.add_parser("runner", help="a testing node, and its administration"))

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
        if args.command == "runner" and args.runner_cmd is None:
            from bot.runner.command import run_node

            # A node holds no settings, database or vault: only a URL and a token.
            return asyncio.run(run_node(args, environ=os.environ, out=sys.stdout, err=sys.stderr))
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


# storage.apikeys.SCOPES, spelt out so building the parser imports no storage code.
API_KEY_SCOPES = ("report", "read", "run")


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from bot import commands
    from bot.runner.admin import runner_admin

    table: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "serve": commands.serve,
        "worker": commands.worker,
        "db": commands.db,
        "org": commands.org,
        "apikey": commands.apikey,
        "integration": commands.integration,
        "keys": commands.keys,
        "jobs": commands.jobs,
        "cycles": commands.cycles,
        "runner": runner_admin,
    }
    from providers.registry import cli_groups

    for group in cli_groups():
        table[group.name] = functools.partial(group.run, with_runtime=commands.with_runtime)
    return table[args.command](args, settings)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` so workers finish or release their jobs."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
