"""What ``aac gitlab hooks apply`` and ``aac azure hooks apply`` share: their arguments, the
apply flow (read the file and the organisation, plan, print, apply) and reporting an apply that
stopped half way; each SCM supplies only how it reads its hooks and plans their changes."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TextIO, TypeVar

from config.settings import Settings
from providers.base import ProviderError
from providers.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, say
from providers.hook_plans import (
    ApplyOutcome,
    Change,
    ManifestError,
    apply_plan,
    ordered,
    outcome_lines,
    summary,
)
from providers.registry import CliGroup, CliRuntime, WithRuntime
from storage import orgs
from storage.models import Organization
from storage.vault import Secret

T = TypeVar("T")
M = TypeVar("M")


Apply = Callable[..., Awaitable[int]]  # (runtime, args, *, out=, err=) -> exit code


def hooks_group(
    name: str,
    help: str,
    what: str,
    default_file: str,
    apply: Apply,
    *,
    more: CliGroup | None = None,
) -> CliGroup:
    """The ``aac <name> hooks apply`` command group, running ``apply``; ``more`` adds the
    SCM's other subcommands to the same group (its ``add_parser`` gets the group's
    subparsers, its ``run`` every command but ``hooks``)."""

    def add_parser(subparsers: Any) -> None:
        group = subparsers.add_parser(name, help=help).add_subparsers(
            dest=f"{name}_cmd", required=True
        )
        if more is not None:
            more.add_parser(group)
        hooks = group.add_parser("hooks", help=what).add_subparsers(
            dest=f"{name}_hooks_cmd", required=True
        )
        parser = hooks.add_parser("apply", help=f"create or update the {what} {default_file} lists")
        add_apply_arguments(parser, default_file)

    def run(args: argparse.Namespace, settings: Settings, *, with_runtime: WithRuntime) -> int:
        if more is not None and getattr(args, f"{name}_cmd") != "hooks":
            return more.run(args, settings, with_runtime=with_runtime)
        return with_runtime(settings, lambda runtime: apply(runtime, args))

    return CliGroup(name, add_parser, run)


def read_manifest(path: str, load: Callable[..., M]) -> M:
    """The hooks file at ``path`` loaded by ``load(text, source=path)``; a CliError (usage)
    naming the problem, before anything is read from or written to the SCM."""
    try:
        return load(read_file(path), source=path)
    except ManifestError as exc:
        raise CliError(f"{exc}; nothing changed", EXIT_USAGE) from None


def add_apply_arguments(parser: argparse.ArgumentParser, default_file: str) -> None:
    """``--org SLUG [--file PATH] [--dry-run] [--prune] [--resend-secret]``."""
    parser.add_argument("--org", required=True, help="the organisation whose hooks these are")
    parser.add_argument("--file", default=default_file, help=f"default: {default_file}")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="also delete the bot's hooks the file no longer lists",
    )
    parser.add_argument(
        "--resend-secret",
        action="store_true",
        help="send the stored secret to every hook again (the SCM never shows it back)",
    )


def read_file(path: str) -> str:
    """The file's text; a CliError naming it when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}; pass --file PATH", 2) from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text", 2) from None


def print_plan(header: str, changes: Sequence[Change[Any]], out: TextIO) -> None:
    """The plan: a header, one line per change, then the counts."""
    say(header, out)
    for change in ordered(changes):
        say(change.line(), out)
    say(summary(changes), out)


def report_failure(
    outcome: ApplyOutcome[T], reason: str, err: TextIO, *, extra: Sequence[str] = ()
) -> None:
    """Every line of a failed apply on stderr: what failed and why, what was and was not done."""
    for line in [*outcome_lines(outcome, reason=reason), *extra]:
        say(line, err)


@dataclass(frozen=True, slots=True)
class OrgHooks:
    """What an apply needs of the organisation, read once before any call to the SCM."""

    org_id: int
    slug: str
    base_url: str | None
    token: Secret
    stored_secret: Secret | None
    state: dict[str, Any]


async def load_org(
    runtime: CliRuntime, slug: str, provider: str, *, state_key: str, rights: str
) -> OrgHooks:
    """The organisation's token, webhook secret and hook state for ``provider``; CliError
    naming what to do when the organisation or its token is missing."""
    async with runtime.sessions() as session:
        try:
            org = await orgs.get_org(session, slug)
        except orgs.OrgError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        integration = org.integrations.get(provider)
        token = orgs.integration_token(runtime.vault, org, provider)
        if integration is None or token is None:
            raise CliError(
                f"organisation {org.slug} has no {provider} token; store one with "
                f"`aac integration set {provider} --org {org.slug} --token-stdin "
                f"[--base-url URL]` ({rights})",
                EXIT_USAGE,
            )
        return OrgHooks(
            org_id=org.id,
            slug=org.slug,
            base_url=integration.base_url,
            token=token,
            stored_secret=orgs.integration_webhook_secret(runtime.vault, org, provider),
            state=dict((org.settings or {}).get(state_key) or {}),
        )


@dataclass(frozen=True, slots=True)
class HooksPlan(Generic[T]):
    """One SCM's plan and how to carry it out: the plan's header line, its changes, the write
    of one change with the secret, the hook state to remember (given whether the apply was
    complete and whether the secret was sent) and the reason a refused change gives."""

    header: str
    changes: Sequence[Change[T]]
    write: Callable[[Change[T], str], Awaitable[None]]
    state_after: Callable[[bool, bool], dict[str, Any]]
    reason: Callable[[Change[T], ProviderError], str]


# (runtime, args, manifest, organisation, send_secret) -> the plan; reads the SCM, writes nothing.
Planner = Callable[[CliRuntime, argparse.Namespace, M, OrgHooks, bool], Awaitable[HooksPlan[T]]]


@dataclass(frozen=True, slots=True)
class HooksSpec(Generic[M, T]):
    """What one SCM's ``hooks apply`` works with: the organisation's integration and hook state
    key, what its token needs (for the error naming a missing one), the file's loader and the
    planner."""

    source: str
    state_key: str
    rights: str
    load_manifest: Callable[..., M]
    planner: Planner[M, T]


def hooks_apply(spec: Callable[[], HooksSpec[Any, Any]]) -> Apply:
    """The ``hooks apply`` command of the SCM whose spec ``spec()`` returns (called when the
    command runs, so that its SDK is imported then and not for every ``aac``)."""

    async def apply(
        runtime: CliRuntime,
        args: argparse.Namespace,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> int:
        return await run_apply(runtime, args, spec(), out=out or sys.stdout, err=err or sys.stderr)

    return apply


async def run_apply(
    runtime: CliRuntime,
    args: argparse.Namespace,
    spec: HooksSpec[M, T],
    *,
    out: TextIO,
    err: TextIO,
) -> int:
    """Print the plan, then (unless ``--dry-run``) apply it; exit non-zero when any part failed,
    after saying what was applied and what was not."""
    manifest = read_manifest(args.file, spec.load_manifest)
    org = await load_org(
        runtime, args.org, spec.source, state_key=spec.state_key, rights=spec.rights
    )
    # The SCM never shows a secret back: send it when none is stored yet (one is generated),
    # when asked to, or when an earlier apply stopped before every hook had it.
    send_secret = (
        org.stored_secret is None or args.resend_secret or bool(org.state.get("resend_secret"))
    )
    plan = await spec.planner(runtime, args, manifest, org, send_secret)
    print_plan(plan.header, plan.changes, out)
    return await apply_and_report(
        runtime,
        org,
        plan.changes,
        provider=spec.source,
        state_key=spec.state_key,
        dry_run=args.dry_run,
        send_secret=send_secret,
        write=plan.write,
        state_after=plan.state_after,
        reason=plan.reason,
        out=out,
        err=err,
    )


async def apply_and_report(
    runtime: CliRuntime,
    target: OrgHooks,
    changes: Sequence[Change[T]],
    *,
    provider: str,
    state_key: str,
    dry_run: bool,
    send_secret: bool,
    write: Callable[[Change[T], str], Awaitable[None]],
    state_after: Callable[[bool, bool], dict[str, Any]],
    reason: Callable[[Change[T], ProviderError], str],
    out: TextIO,
    err: TextIO,
) -> int:
    """The tail every apply shares: stop at a dry run or an empty plan; otherwise make sure a
    secret is stored *before* any hook carries it, apply, remember the state, and report."""
    if target.stored_secret is None:
        say("no webhook secret is stored yet: applying generates and stores one", out)
    if dry_run:
        say("dry run: nothing changed", out)
        return EXIT_OK
    if not any(c.writes for c in changes):
        say("nothing to change", out)
        await _save_state(runtime, target, state_key, state_after(True, False))
        return EXIT_OK
    if target.stored_secret is not None:
        secret = target.stored_secret.reveal()
    else:
        secret = secrets.token_urlsafe(32)
        async with runtime.sessions.begin() as session:
            org = await orgs.get_org(session, target.slug)
            await orgs.set_integration(session, runtime.vault, org, provider, webhook_secret=secret)
    outcome = await apply_plan(changes, lambda change: write(change, secret))
    await _save_state(runtime, target, state_key, state_after(outcome.ok, send_secret))
    if outcome.failed is not None and outcome.error is not None:
        extra = []
        if send_secret:
            extra.append(
                "the next apply sends the secret to every hook again, so those not reached yet "
                "get it too"
            )
        report_failure(outcome, reason(outcome.failed, outcome.error), err, extra=extra)
        return EXIT_FAILED
    say(f"applied {len(outcome.applied)} change(s); applying again reports none", out)
    return EXIT_OK


async def _save_state(
    runtime: CliRuntime, target: OrgHooks, state_key: str, state: dict[str, Any]
) -> None:
    if state == target.state:
        return
    async with runtime.sessions.begin() as session:
        org = await session.get_one(Organization, target.org_id)
        orgs.set_org_setting(org, state_key, state)
