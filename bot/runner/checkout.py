"""Fetch a repository at one exact commit into a fresh directory.

The credential reaches git only through its environment (``GIT_CONFIG_*`` setting
``http.extraHeader``): never on a command line (visible in ``ps``), never in a file.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

GIT_TIMEOUT_SECONDS = 600.0


class CheckoutError(Exception):
    """git could not fetch or check out the commit; the message is safe to log."""


@dataclass(frozen=True, slots=True)
class GitAuth:
    username: str
    password: str = field(repr=False)


def git_environment(
    base: Mapping[str, str], home: Path, auth: GitAuth | None, url: str
) -> dict[str, str]:
    """The environment git runs in: no prompts, no system or user config, and the
    credential as an HTTP header for https URLs only (never sent over plain http)."""
    env = {
        "PATH": base.get("PATH", os.defpath),
        "HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C",
    }
    if auth is not None and url.startswith("https://"):
        basic = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        env.update(
            {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        )
    return env


async def _git(args: list[str], env: Mapping[str, str], cwd: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), GIT_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise CheckoutError(f"git {args[0]} took longer than {GIT_TIMEOUT_SECONDS:.0f} s") from None
    text = output.decode(errors="replace").strip()
    if process.returncode != 0:
        raise CheckoutError(f"git {args[0]} failed ({process.returncode}): {text[-2000:]}")
    return text


async def init_repository(target: Path, *, base_env: Mapping[str, str], home: Path) -> None:
    """An empty repository at ``target`` (needs no credential: done while one is fetched)."""
    await _git(
        ["init", "-q", str(target)], git_environment(base_env, home, None, ""), target.parent
    )


async def checkout(
    url: str,
    sha: str,
    target: Path,
    *,
    auth: GitAuth | None,
    base_env: Mapping[str, str],
    home: Path,
    initialised: bool = False,
) -> None:
    """Make ``target`` a checkout of ``sha`` from ``url`` (shallow when the server allows)."""
    env = git_environment(base_env, home, auth, url)
    if not initialised:
        await init_repository(target, base_env=base_env, home=home)
    try:
        await _git(["fetch", "-q", "--depth", "1", "--no-tags", url, sha], env, target)
    except CheckoutError:
        # Servers that refuse a commit id as a "want": fetch branches and PR heads instead.
        await _git(
            [
                "fetch",
                "-q",
                "--no-tags",
                url,
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/pull/*/head:refs/remotes/pull/*",
                "+refs/merge-requests/*/head:refs/remotes/mr/*",
            ],
            env,
            target,
        )
        await _git(["checkout", "-q", "--detach", sha], env, target)
        return
    # FETCH_HEAD is the commit asked for by its id: nothing a branch push can move.
    await _git(["checkout", "-q", "--detach", "FETCH_HEAD"], env, target)
