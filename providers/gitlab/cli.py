"""``aac gitlab hooks apply``: the project and group webhooks ``app-manifests/gitlab-hooks.yml``
lists, created or updated to this deployment's URL, events and secret."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from providers.base import ProviderError
from providers.cli import CliError
from providers.hook_plans import Change
from providers.hooks_cli import HooksPlan, HooksSpec, OrgHooks, hooks_apply, hooks_group
from providers.registry import CliRuntime

if TYPE_CHECKING:  # python-gitlab is imported when a command runs, not for every `aac`
    from providers.gitlab.hooks import Hook, HooksFile

NAME = "gitlab"
SOURCE = "gitlab"
DEFAULT_FILE = "app-manifests/gitlab-hooks.yml"


RIGHTS = "api scope; Maintainer on the projects, Owner on the groups"


def hooks_spec() -> HooksSpec[HooksFile, Hook]:
    """What ``aac gitlab hooks apply`` works with (python-gitlab imported only now)."""
    from providers.gitlab import hooks

    return HooksSpec(SOURCE, hooks.STATE_KEY, RIGHTS, hooks.load_manifest, plan_hooks)


apply_hooks = hooks_apply(hooks_spec)


async def plan_hooks(
    runtime: CliRuntime,
    args: argparse.Namespace,
    manifest: HooksFile,
    org: OrgHooks,
    send_secret: bool,
) -> HooksPlan[Hook]:
    """The hooks' plan against what the projects and groups (and those hooked before) hold
    now; CliError when one cannot be read (nothing changed)."""
    from providers.gitlab import hooks
    from providers.gitlab.hooks import GitlabHooks, Target
    from providers.gitlab.provider import DEFAULT_BASE_URL, GitlabShared

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
    changes = hooks.plan(
        hooks.desired_hooks(manifest, url),
        existing,
        our_urls={url, *state.get("urls", [])},
        send_secret=send_secret,
        prune=args.prune,
    )

    async def write(change: Change[Hook], secret: str) -> None:
        hook = change.subject
        if change.action == "create":
            await client.create(hook, secret)
        elif change.action == "update":
            await client.update(hook, int(change.remote_id or 0), secret)
        else:
            await client.delete(hook.target, int(change.remote_id or 0))

    return HooksPlan(
        header=f"GitLab hooks of {org.slug} at {client.base_url}, delivering to {url}:",
        changes=changes,
        write=write,
        state_after=lambda complete, sent: hooks.state_after(
            state, url=url, wanted=wanted, changes=changes, complete=complete, secret_sent=sent
        ),
        reason=lambda change, error: hooks.refusal(error, change.subject.target, org.slug),
    )


GROUP = hooks_group(
    NAME, "GitLab webhooks", "project and group webhooks", DEFAULT_FILE, apply_hooks
)
