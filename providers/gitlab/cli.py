"""``aac gitlab hooks apply``: the project and group webhooks ``app-manifests/gitlab-hooks.yml``
lists, created or updated to this deployment's URL, events and secret."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from providers.base import ProviderError
from providers.cli import CliError
from providers.hook_plans import Change
from providers.hooks_cli import (
    apply_and_report,
    hooks_group,
    load_org,
    print_plan,
    read_manifest,
)
from providers.registry import CliRuntime

if TYPE_CHECKING:  # python-gitlab is imported when a command runs, not for every `aac`
    from providers.gitlab.hooks import Hook

NAME = "gitlab"
SOURCE = "gitlab"
DEFAULT_FILE = "app-manifests/gitlab-hooks.yml"


async def apply_hooks(
    runtime: CliRuntime,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the plan, then (unless ``--dry-run``) apply it; exit non-zero when any part failed,
    after saying what was applied and what was not."""
    from providers.gitlab import hooks
    from providers.gitlab.hooks import GitlabHooks, Target
    from providers.gitlab.provider import DEFAULT_BASE_URL, GitlabShared

    manifest = read_manifest(args.file, hooks.load_manifest)
    org = await load_org(
        runtime,
        args.org,
        SOURCE,
        state_key=hooks.STATE_KEY,
        rights="api scope; Maintainer on the projects, Owner on the groups",
    )
    state = org.state
    url = hooks.hook_url(runtime.settings.public_url, org.slug)
    wanted = hooks.targets(manifest)
    earlier = [t for t in map(Target.parse, state.get("targets", [])) if t and t not in wanted]
    client = GitlabHooks(
        base_url=org.base_url or DEFAULT_BASE_URL,
        token=org.token.reveal(),
        org=org.slug,
        shared=GitlabShared(),
    )
    existing = {}
    for target in [*wanted, *earlier]:
        try:
            existing[target] = await client.list(target)
        except ProviderError as exc:
            if target in earlier and hooks.is_gone(exc):
                continue  # hooked once, deleted since: nothing of ours is left there
            raise CliError(
                f"cannot read the hooks of {target}: {hooks.refusal(exc, target, org.slug)}; "
                "nothing changed"
            ) from None
    send_secret = (
        org.stored_secret is None or args.resend_secret or bool(state.get("resend_secret"))
    )
    changes = hooks.plan(
        hooks.desired_hooks(manifest, url),
        existing,
        our_urls={url, *state.get("urls", [])},
        send_secret=send_secret,
        prune=args.prune,
    )
    out, err = out or sys.stdout, err or sys.stderr
    print_plan(
        f"GitLab hooks of {org.slug} at {client.base_url}, delivering to {url}:", changes, out
    )

    async def write(change: Change[Hook], secret: str) -> None:
        hook = change.subject
        if change.action == "create":
            await client.create(hook, secret)
        elif change.action == "update":
            await client.update(hook, int(change.remote_id or 0), secret)
        else:
            await client.delete(hook.target, int(change.remote_id or 0))

    return await apply_and_report(
        runtime,
        org,
        changes,
        provider=SOURCE,
        state_key=hooks.STATE_KEY,
        dry_run=args.dry_run,
        send_secret=send_secret,
        write=write,
        state_after=lambda complete, sent: hooks.state_after(
            state, url=url, wanted=wanted, changes=changes, complete=complete, secret_sent=sent
        ),
        reason=lambda change, error: hooks.refusal(error, change.subject.target, org.slug),
        out=out,
        err=err,
    )


GROUP = hooks_group(
    NAME, "GitLab webhooks", "project and group webhooks", DEFAULT_FILE, apply_hooks
)
