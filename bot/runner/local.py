"""``aac serve --local-runner``: one testing node as a child process of ``aac serve``, for the
all-in-one setup. It talks to the server over HTTP like any node, with a token issued here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.cli import CliError
from bot.commands import with_runtime
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
) -> subprocess.Popen[bytes]:
    """Start the node as a child process (`aac runner`), which the server stops on exit.

    Not a thread of the server: a process forked from inside granian's threads could hang
    before it ran (the node forks git, docker and the suite's command), and a crash of a job
    would take the web server with it."""
    slug, token = _issue_token(settings, org_slug)
    environ = {"PATH": os.environ.get("PATH", os.defpath), "AAC_RUNNER_TOKEN": token}
    command = [sys.executable, "-m", "bot", "runner", "--server", server]
    command += ["--name", LOCAL_NAME, "--work-dir", str(work_dir)]
    node = subprocess.Popen(command, env=environ)
    print(f"local testing node {LOCAL_NAME!r} started for {slug}", file=sys.stderr)
    return node


def stop_local_runner(node: subprocess.Popen[bytes]) -> None:
    """Ask the node to stop (it ends its job's process group), then make sure it did."""
    if node.poll() is None:
        node.terminate()
        try:
            node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
