"""Project and group webhooks declared in ``app-manifests/gitlab-hooks.yml``: the file's schema,
the pure plan (the hooks the file wants against the hooks GitLab has, matched by URL), and the
python-gitlab calls that read and write them.

GitLab never returns a hook's secret token, so the plan cannot see it: a hook at our URL with
the right events is taken to carry the organisation's stored secret, and every hook is sent
the secret again when there was none stored yet, when ``--resend-secret`` asks, or when an
earlier apply that changed it stopped half way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import gitlab.exceptions
from pydantic import BaseModel, ConfigDict, Field, field_validator

from providers.base import NotFound
from providers.gitlab.errors import gitlab_message
from providers.gitlab.provider import GitlabShared, instance_url, run_call
from providers.hook_plans import Change, ManifestError, parse_manifest

T = TypeVar("T")
TargetKind = Literal["project", "group"]
# The file's event names and the hook attribute each one switches on. Every attribute here is
# sent on each write, off unless the file names it: GitLab turns push events on by default.
EVENT_FLAGS: dict[str, str] = {
    "merge_requests": "merge_requests_events",
    "pipelines": "pipeline_events",
    "notes": "note_events",
    "push": "push_events",
    "tag_push": "tag_push_events",
    "issues": "issues_events",
    "confidential_issues": "confidential_issues_events",
    "confidential_notes": "confidential_note_events",
    "jobs": "job_events",
    "wiki_pages": "wiki_page_events",
    "deployments": "deployment_events",
    "releases": "releases_events",
}
# What the bot handles (providers/gitlab/inbound.py): merge request, pipeline and note hooks.
REQUIRED_EVENTS = ("merge_requests", "pipelines", "notes")
STATE_KEY = "gitlab_hooks"  # in the organisation's settings: what earlier applies managed


class HooksFile(BaseModel):
    """``gitlab-hooks.yml``: the projects and groups to hook, and the events to send."""

    model_config = ConfigDict(extra="forbid")

    events: list[str] = Field(default_factory=lambda: list(REQUIRED_EVENTS))
    enable_ssl_verification: bool = True
    projects: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        unknown = sorted(set(events) - set(EVENT_FLAGS))
        if unknown:
            raise ValueError(f"unknown events {unknown}; use some of {sorted(EVENT_FLAGS)}")
        missing = [e for e in REQUIRED_EVENTS if e not in events]
        if missing:
            raise ValueError(f"the bot needs these events too: {', '.join(missing)}")
        return events

    @field_validator("projects", "groups")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path or path != path.strip("/ ") or "//" in path:
                raise ValueError(f"{path!r} is not a path like group/sub/project")
        duplicates = sorted({p for p in paths if paths.count(p) > 1})
        if duplicates:
            raise ValueError(f"listed twice: {', '.join(duplicates)}")
        return paths


def load_manifest(text: str, *, source: str) -> HooksFile:
    """The hooks file parsed and checked; ManifestError naming ``source`` and the problem."""
    manifest = parse_manifest(text, HooksFile, source=source)
    if not manifest.projects and not manifest.groups:
        raise ManifestError(f"{source} lists no projects and no groups")
    return manifest


# ---------------------------------------------------------------------------------------
# The plan: pure
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, order=True)
class Target:
    """A project or a group, by its full path."""

    kind: TargetKind
    path: str

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"

    @classmethod
    def parse(cls, text: str) -> Target | None:
        kind, _, path = text.partition(" ")
        if kind == "project" and path:
            return cls("project", path)
        if kind == "group" and path:
            return cls("group", path)
        return None


@dataclass(frozen=True, slots=True)
class Hook:
    """A hook as the plan compares it: where, to which URL, which events, TLS checked or not."""

    target: Target
    url: str
    flags: Mapping[str, bool]
    ssl: bool = True


@dataclass(frozen=True, slots=True)
class ExistingHook:
    """A hook GitLab has (``GET .../hooks``)."""

    id: int
    url: str
    flags: Mapping[str, bool]  # only the attributes GitLab answered with
    ssl: bool


def hook_url(public_url: str, org_slug: str) -> str:
    """Where GitLab delivers an organisation's events (``/webhooks/gitlab/{org}``)."""
    return f"{public_url.rstrip('/')}/webhooks/gitlab/{org_slug}"


def targets(manifest: HooksFile) -> list[Target]:
    """The file's projects, then its groups."""
    return [Target("project", p) for p in manifest.projects] + [
        Target("group", g) for g in manifest.groups
    ]


def desired_hooks(manifest: HooksFile, url: str) -> list[Hook]:
    """One hook per target of the file, every managed event attribute set on or off."""
    flags = {flag: name in manifest.events for name, flag in EVENT_FLAGS.items()}
    return [Hook(t, url, flags, manifest.enable_ssl_verification) for t in targets(manifest)]


def differences(want: Hook, have: ExistingHook) -> list[str]:
    """What an update would change (empty: nothing); attributes GitLab did not answer with are
    ones this GitLab does not have, and never count."""
    found = []
    if have.url != want.url:
        found.append(f"url {have.url} -> {want.url}")
    for flag, on in want.flags.items():
        if flag in have.flags and have.flags[flag] != on:
            found.append(f"{flag} {'off -> on' if on else 'on -> off'}")
    if have.ssl != want.ssl:
        found.append(f"enable_ssl_verification -> {str(want.ssl).lower()}")
    return found


def plan(
    desired: Sequence[Hook],
    existing: Mapping[Target, Sequence[ExistingHook]],
    *,
    our_urls: Iterable[str],
    send_secret: bool,
    prune: bool,
) -> list[Change[Hook]]:
    """Create, update, leave or delete each hook at one of ``our_urls`` (the current URL and
    those earlier applies used). ``existing`` holds every target to look at: the file's and
    those earlier applies hooked; a hook of ours the file no longer wants is deleted only with
    ``prune`` (and a second hook of ours on one target too: GitLab would deliver twice)."""
    ours = set(our_urls)
    wanted = {hook.target: hook for hook in desired}
    changes: list[Change[Hook]] = []
    for target in [*wanted, *sorted(t for t in existing if t not in wanted)]:
        hooks = [h for h in existing.get(target, ()) if h.url in ours]
        want = wanted.get(target)
        if want is not None:
            # The hook at the current URL first, so a move from an old URL is an update.
            hooks.sort(key=lambda h: (h.url != want.url, h.id))
            if not hooks:
                changes.append(Change("create", str(target), want, why=_events(want)))
                continue
            first, hooks = hooks[0], hooks[1:]
            why = differences(want, first)
            if send_secret and not why:
                why = ["secret token sent again"]
            action: Literal["update", "noop"] = "update" if why else "noop"
            changes.append(Change(action, str(target), want, str(first.id), tuple(why)))
            reason = "a second hook at the bot's URL"
        else:
            reason = "no longer in the file"
        for extra in hooks:
            gone = Hook(target, extra.url, extra.flags, extra.ssl)
            if prune:
                changes.append(Change("delete", str(target), gone, str(extra.id), (reason,)))
            else:
                changes.append(Change("keep", str(target), gone, str(extra.id), (reason,)))
    return changes


def _events(hook: Hook) -> tuple[str, ...]:
    on = [name for name, flag in EVENT_FLAGS.items() if hook.flags.get(flag)]
    return (f"events {', '.join(on)}",)


def hook_attributes(hook: Hook, secret: str) -> dict[str, Any]:
    """The body of ``POST``/``PUT .../hooks``: URL, every managed event, TLS, the secret."""
    return {
        "url": hook.url,
        **hook.flags,
        "enable_ssl_verification": hook.ssl,
        "token": secret,
    }


def state_after(
    previous: Mapping[str, Any],
    *,
    url: str,
    wanted: Sequence[Target],
    changes: Sequence[Change[Hook]],
    complete: bool,
    secret_sent: bool,
) -> dict[str, Any]:
    """What the organisation's settings remember after an apply: the URLs and targets that may
    still hold our hooks (for a later ``--prune``), and whether the secret must be sent again
    (an apply that sent a new secret stopped before reaching every hook)."""
    kept = {c.subject.target for c in changes if c.action == "keep"}
    targets_now = set(wanted) | kept
    urls = {url} | {c.subject.url for c in changes if c.action == "keep"}
    if not complete:
        # Unknown how far it got: remember everything that may still hold a hook of ours.
        targets_now |= {t for t in map(Target.parse, previous.get("targets", [])) if t}
        urls |= set(previous.get("urls", []))
    return {
        "urls": sorted(urls),
        "targets": sorted(str(t) for t in targets_now),
        "resend_secret": bool(not complete and (secret_sent or previous.get("resend_secret"))),
    }


# ---------------------------------------------------------------------------------------
# python-gitlab: the calls (in bounded worker threads), errors translated in one place
# ---------------------------------------------------------------------------------------
class GitlabHooks:
    """Reads and writes one organisation's project and group hooks."""

    def __init__(self, *, base_url: str, token: str, org: str, shared: GitlabShared) -> None:
        self.base_url = instance_url(base_url)
        self._org = org
        self._shared = shared
        self._gl = shared.client(self.base_url, token)

    def _hooks(self, target: Target) -> Any:
        parent = (self._gl.projects if target.kind == "project" else self._gl.groups).get(
            target.path, lazy=True
        )
        return parent.hooks

    async def list(self, target: Target) -> list[ExistingHook]:
        """Every hook of the project or group (all pages)."""

        def fetch() -> list[ExistingHook]:
            return [_existing(h.attributes) for h in self._hooks(target).list(iterator=True)]

        return await self._call(f"list the hooks of {target}", fetch)

    async def create(self, hook: Hook, secret: str) -> None:
        """Add the hook; never retried blindly (a lost answer may hide a created hook)."""
        body = hook_attributes(hook, secret)
        await self._call(
            f"create a hook on {hook.target}",
            lambda: self._hooks(hook.target).create(body, retry_transient_errors=False),
        )

    async def update(self, hook: Hook, hook_id: int, secret: str) -> None:
        """Set every managed attribute of the hook, and its secret."""
        body = hook_attributes(hook, secret)
        await self._call(
            f"update hook {hook_id} on {hook.target}",
            lambda: self._hooks(hook.target).update(hook_id, body),
        )

    async def delete(self, target: Target, hook_id: int) -> None:
        """Remove the hook; one already gone counts as removed."""

        def remove() -> None:
            try:
                self._hooks(target).delete(hook_id)
            except gitlab.exceptions.GitlabDeleteError as exc:
                if exc.response_code != 404 or "project" in gitlab_message(exc).lower():
                    raise

        await self._call(f"delete hook {hook_id} on {target}", remove)

    async def _call(self, action: str, op: Callable[[], T]) -> T:
        return await run_call(self._shared, self._org, action, op)


def _existing(data: Mapping[str, Any]) -> ExistingHook:
    flags = {flag: bool(data[flag]) for flag in EVENT_FLAGS.values() if flag in data}
    return ExistingHook(
        id=int(data["id"]),
        url=str(data.get("url") or ""),
        flags=flags,
        ssl=bool(data.get("enable_ssl_verification", True)),
    )


def is_gone(error: BaseException) -> bool:
    """True when GitLab says the project or group no longer exists (or is out of sight)."""
    return isinstance(error, NotFound)


def refusal(error: BaseException, target: Target, org: str) -> str:
    """One line naming what GitLab's refusal means and what to do: the token's scope, the
    user's role on the project or group, or the group-hooks licence."""
    cause = error.__cause__
    status, message = None, ""
    if isinstance(cause, gitlab.exceptions.GitlabError):
        status, message = cause.response_code, gitlab_message(cause).lower()
    again = f"`aac integration set gitlab --org {org} --token-stdin`"
    if status == 401:
        return (
            "GitLab refused the organisation's token (expired or revoked?); set a new one "
            f"with {again}"
        )
    if status == 403 and "insufficient_scope" in message:
        return (
            "the GitLab token lacks the `api` scope (read_api cannot change hooks); create one "
            f"with the api scope and store it with {again}"
        )
    if status == 403 and target.kind == "project":
        return (
            f"the token's user needs the Maintainer role (or Owner) on {target} to manage its hooks"
        )
    if status == 403:
        return (
            f"group hooks need GitLab Premium or Ultimate and the Owner role on {target}; on a "
            "Free instance list the group's projects under `projects:` instead"
        )
    if status == 404 and target.kind == "group":
        return (
            f"{target} was not found, or this GitLab has no group hooks (Community Edition); "
            "check the path, or list its projects under `projects:`"
        )
    if status == 404:
        return f"{target} was not found, or the token's user cannot see it; check the path"
    return str(error)
