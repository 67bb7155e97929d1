"""``aac azure hooks apply``: the service-hook subscriptions listed in
``app-manifests/azure-service-hooks.yml``, created or replaced to this deployment's URL and
basic-auth credentials."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from providers.azure_devops.credentials_cli import GROUP as CREDENTIALS
from providers.base import ProviderError
from providers.cli import CliError
from providers.hook_plans import Change
from providers.hooks_cli import HooksPlan, HooksSpec, OrgHooks, hooks_apply, hooks_group
from providers.registry import CliRuntime

if TYPE_CHECKING:  # the SDK is imported when a command runs, not for every `aac`
    from providers.azure_devops.service_hooks import ServiceHooksFile, Wanted

NAME = "azure"
SOURCE = "azure"
DEFAULT_FILE = "app-manifests/azure-service-hooks.yml"


RIGHTS = (
    'a PAT with the "Service Hooks (Read, write & manage)" scope whose user may '
    '"Edit subscriptions" in the projects'
)


def hooks_spec() -> HooksSpec[ServiceHooksFile, Wanted]:
    """What ``aac azure hooks apply`` works with (the SDK imported only now)."""
    from providers.azure_devops import service_hooks as sh

    return HooksSpec(SOURCE, sh.STATE_KEY, RIGHTS, sh.load_manifest, plan_hooks)


apply_hooks = hooks_apply(hooks_spec)


async def plan_hooks(
    runtime: CliRuntime,
    args: argparse.Namespace,
    manifest: ServiceHooksFile,
    org: OrgHooks,
    send_secret: bool,
) -> HooksPlan[Wanted]:
    """The subscriptions' plan against what the projects hold now; CliError when they cannot
    be read (nothing changed)."""
    from providers.azure_devops import service_hooks as sh
    from providers.azure_devops.provider import AzureShared

    state = org.state
    url = sh.hook_url(runtime.settings.public_url, org.slug)
    client = sh.AzureServiceHooks(
        # The organisation URL; without one, the Azure DevOps organisation named like ours.
        base_url=org.base_url or f"https://dev.azure.com/{org.slug}",
        token=org.token.reveal(),
        org=org.slug,
        shared=AzureShared(),
    )
    project_ids: dict[str, str] = {}
    try:
        for project in manifest.projects:
            current = project
            project_ids[project] = await client.project_id(project)
        current = "(all)"
        existing = await client.list()
    except ProviderError as exc:
        reason = sh.refusal(exc, writing=False, project=current, org=org.slug)
        raise CliError(f"cannot read the subscriptions: {reason}; nothing changed") from None
    changes = sh.plan(
        sh.wanted(manifest, project_ids, url),
        existing,
        our_urls={url, *state.get("urls", [])},
        project_names={v: k for k, v in project_ids.items()},
        send_secret=send_secret,
        prune=args.prune,
    )

    async def write(change: Change[Wanted], secret: str) -> None:
        if change.action == "create":
            await client.create(change.subject, secret)
        elif change.action == "update":
            await client.replace(change.subject, change.remote_id or "", secret)
        else:
            await client.delete(change.remote_id or "")

    return HooksPlan(
        header=(
            f"Azure DevOps service hooks of {org.slug} at {client.base_url}, delivering to {url}:"
        ),
        changes=changes,
        write=write,
        state_after=lambda complete, sent: sh.state_after(
            state, url=url, changes=changes, complete=complete, secret_sent=sent
        ),
        reason=lambda change, error: sh.refusal(
            error, writing=True, project=change.subject.project, org=org.slug
        ),
    )


GROUP = hooks_group(
    NAME,
    "Azure DevOps service hooks",
    "service-hook subscriptions",
    DEFAULT_FILE,
    apply_hooks,
    more=CREDENTIALS,
)
