"""``aac runner``: start a testing node; and the operator's subcommands (register, list,
revoke, secret, settings).

The node itself needs no settings, database or vault: only the bot's URL and a token, read
from the environment variable ``--token-env`` names (never from the command line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import httpx

from bot.runner.client import RunnerClient, ServerRefused
from bot.runner.node import Node, NodeConfig, default_name
from bot.runner.process import Limits, docker_daemon_running
from storage.runners import REGISTRATION_PREFIX, RUNNER_PREFIX

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """The node's options and the operator subcommands under ``aac runner``."""
    parser.add_argument("--server", help="the bot's URL, e.g. https://aac.example.com")
    parser.add_argument(
        "--token-env",
        default="AAC_RUNNER_TOKEN",
        help="environment variable holding a runner or registration token "
        "(default AAC_RUNNER_TOKEN)",
    )
    parser.add_argument("--concurrency", type=int, default=1, help="jobs at a time (default 1)")
    parser.add_argument("--labels", default="", help="comma-separated labels, e.g. linux,gpu")
    parser.add_argument("--work-dir", default="aac-runner-work", help="where jobs check out")
    parser.add_argument("--name", help="the node's name (default: the host name)")
    parser.add_argument("--docker-cpus", default="2", help="CPUs per container job (default 2)")
    parser.add_argument("--docker-memory", default="4g", help="memory per container job")
    parser.add_argument("--poll-wait", type=float, default=25.0, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="runner_cmd", metavar="SUBCOMMAND")
    register = sub.add_parser("register", help="create a registration token for nodes (once)")
    register.add_argument("--org", required=True)
    listing = sub.add_parser("list", help="nodes, labels, last heartbeat and current job")
    listing.add_argument("--org")
    revoke = sub.add_parser("revoke", help="revoke a node's token (or --registrations)")
    revoke.add_argument("--org", required=True)
    revoke.add_argument("name", nargs="?", help="the node to revoke")
    revoke.add_argument(
        "--registrations", action="store_true", help="revoke the registration tokens instead"
    )
    secret = sub.add_parser("secret", help="secrets suites name as {secret: NAME}")
    secret.add_argument("action", choices=["set"])
    secret.add_argument("--org", required=True)
    secret.add_argument("--name", required=True)
    secret.add_argument(
        "--value-stdin", action="store_true", required=True, help="read the value from stdin"
    )
    policy = sub.add_parser("settings", help="the organisation's runner policy")
    policy.add_argument("--org", required=True)
    policy.add_argument(
        "--allow-forks",
        action=argparse.BooleanOptionalAction,
        help="run fork PRs (each only after a maintainer's /aac approve)",
    )
    policy.add_argument("--clone-url", help="a mirror to clone from, with {repository}")
    policy.add_argument(
        "--max-attempts",
        type=int,
        help="attempts a job gets when its node vanishes, before it fails (default 3)",
    )


def _labels(raw: str) -> list[str]:
    return sorted({part.strip() for part in raw.split(",") if part.strip()})


def _node_config(
    args: argparse.Namespace, name: str, labels: list[str], *, docker: bool
) -> NodeConfig:
    return NodeConfig(
        name=name,
        labels=labels,
        concurrency=max(1, args.concurrency),
        work_dir=Path(args.work_dir).absolute(),
        poll_wait=args.poll_wait,
        docker=docker,
        limits=Limits(cpus=args.docker_cpus, memory=args.docker_memory),
    )


async def run_node(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    stop: asyncio.Event | None = None,
) -> int:
    """Start a node with the CLI's options until SIGTERM/SIGINT (or ``stop``)."""
    if not args.server:
        print("aac runner: --server URL is required (the bot's address)", file=err)
        return EXIT_USAGE
    token = environ.get(args.token_env, "").strip()
    if not token.startswith((RUNNER_PREFIX, REGISTRATION_PREFIX)):
        print(
            f"aac runner: set {args.token_env} to a runner or registration token "
            "(an operator creates one with `aac runner register --org ORG`)",
            file=err,
        )
        return EXIT_USAGE
    labels = _labels(args.labels)
    docker = await docker_daemon_running()
    if docker:
        labels = sorted({*labels, "docker"})
    name = args.name or default_name()
    client = RunnerClient(args.server, token)
    stop = stop or asyncio.Event()
    # Not on the main thread (`aac serve --local-runner`): the server owns the signals.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        if token.startswith(REGISTRATION_PREFIX):
            registered = await client.register(name, labels)
            print(
                f"aac runner: registered as {registered['runner']['name']} "
                f"(labels: {', '.join(labels) or 'none'})",
                file=out,
                flush=True,
            )
        config = _node_config(args, name, labels, docker=docker)
        print(
            f"aac runner: {name} polling {args.server} for work "
            f"({config.concurrency} at a time{', docker' if docker else ''})",
            file=out,
            flush=True,
        )
        node = Node(client, config, environ=environ, out=out)
        await node.run(stop)
        if node.refused:
            return EXIT_FAILED
    except ServerRefused as exc:
        print(f"aac runner: the bot refused: {exc}", file=err)
        return EXIT_FAILED
    except httpx.TransportError as exc:
        print(f"aac runner: cannot reach {args.server}: {exc}; is the bot running?", file=err)
        return EXIT_FAILED
    finally:
        await client.aclose()
    print("aac runner: stopped", file=out, flush=True)
    return EXIT_OK
