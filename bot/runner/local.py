"""``aac serve --local-runner``: one testing node in the server's own process, for the
all-in-one setup. It talks to the server over HTTP like any node, with a token issued here."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from pathlib import Path

from bot.cli import CliError
from bot.commands import with_runtime
from bot.runner.command import add_runner_arguments, run_node
from bot.runtime import Runtime
from config.settings import Settings
from storage import orgs, runners

LOCAL_NAME = "local"


def _issue_token(settings: Settings, org_slug: str | None) -> tuple[str, str]:
    """(organisation slug, a fresh token of its runner ``local``)."""

    async def issue(runtime: Runtime) -> tuple[str, str]:
        async with runtime.sessions.begin() as session:
            if org_slug:
                org = await orgs.get_org(session, org_slug)
            else:
                found = await orgs.list_orgs(session)
                if len(found) != 1:
                    raise CliError(
                        "--local-runner needs the organisation it runs for when there is not "
                        "exactly one: --local-runner ORG"
                    )
                org = found[0]
            _, token = await runners.issue_runner_token(session, org.id, LOCAL_NAME, [])
            return org.slug, token

    return with_runtime(settings, issue)


def start_local_runner(
    settings: Settings, org_slug: str | None, server: str, work_dir: Path
) -> threading.Thread:
    """Start the node in a daemon thread (it ends with the server process)."""
    slug, token = _issue_token(settings, org_slug)
    parser = argparse.ArgumentParser()
    add_runner_arguments(parser)
    args = parser.parse_args(
        ["--server", server, "--name", LOCAL_NAME, "--work-dir", str(work_dir)]
    )
    environ = {"PATH": os.environ.get("PATH", os.defpath), "AAC_RUNNER_TOKEN": token}

    def main() -> None:
        asyncio.run(run_node(args, environ=environ, out=sys.stderr, err=sys.stderr))

    thread = threading.Thread(target=main, name="aac-local-runner", daemon=True)
    thread.start()
    print(f"local testing node {LOCAL_NAME!r} started for {slug}", file=sys.stderr)
    return thread
