"""What the GitLab and Azure DevOps ``hooks apply`` tests share: running a command in process
with its output captured, and reading the organisation's stored webhook secret."""

from __future__ import annotations

import argparse
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.runtime import Runtime
from storage import orgs


async def run_apply(
    apply_hooks: Callable[..., Awaitable[int]], runtime: Runtime, org: str, path: Path, *flags: str
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``aac <scm> hooks apply --org ORG --file PATH FLAGS``."""
    args = argparse.Namespace(
        org=org,
        file=str(path),
        dry_run="--dry-run" in flags,
        prune="--prune" in flags,
        resend_secret="--resend-secret" in flags,
    )
    out, err = io.StringIO(), io.StringIO()
    code = await apply_hooks(runtime, args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


async def stored_secret(runtime: Runtime, org: str, provider: str) -> str | None:
    """The organisation's webhook secret for ``provider``, decrypted; None when none."""
    async with runtime.sessions() as session:
        found = await orgs.get_org(session, org)
        secret = orgs.integration_webhook_secret(runtime.vault, found, provider)
        return None if secret is None else secret.reveal()
