"""Service-hook subscriptions declared in ``app-manifests/azure-service-hooks.yml``: the file's
schema, the pure plan (the subscriptions the file wants against those the organisation has,
matched by project, event type and our URL), and the azure-devops SDK calls.

Each subscription posts to ``/webhooks/azure/{org}`` with basic-auth credentials: the user name
``BASIC_AUTH_USERNAME`` and the organisation's webhook secret as the password. Azure masks the
password when a subscription is read back, so, as for GitLab, a subscription of ours is taken to
carry the stored secret unless it was just generated, ``--resend-secret`` asks, or an earlier
apply that sent it stopped half way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from azure.devops.v7_1.core.core_client import CoreClient
from azure.devops.v7_1.service_hooks.models import Subscription
from azure.devops.v7_1.service_hooks.service_hooks_client import ServiceHooksClient
from pydantic import BaseModel, ConfigDict, Field, field_validator

from providers.azure_devops.errors import AzureHttpError, translate_error
from providers.azure_devops.provider import AzureShared
from providers.base import NotFound
from providers.hook_plans import Change, parse_manifest

T = TypeVar("T")
CONSUMER_ID = "webHooks"
CONSUMER_ACTION_ID = "httpRequest"
BASIC_AUTH_USERNAME = "aac"
STATE_KEY = "azure_hooks"  # in the organisation's settings: URLs earlier applies used
# Each event type the bot handles (providers/azure_devops/inbound.py), with its publisher and
# the payload version the bot parses (Azure DevOps' service-hook events reference).
EVENTS: dict[str, tuple[str, str]] = {
    "git.pullrequest.created": ("tfs", "1.0"),
    "git.pullrequest.updated": ("tfs", "1.0"),
    "git.pullrequest.merged": ("tfs", "1.0"),
    "build.complete": ("tfs", "2.0"),
    "ms.vss-pipelines.run-state-changed-event": ("pipelines", "5.1-preview.1"),
    "ms.vss-code.git-pullrequest-comment-event": ("tfs", "2.0"),
}


class ServiceHooksFile(BaseModel):
    """``azure-service-hooks.yml``: the projects to subscribe to, and the event types."""

    model_config = ConfigDict(extra="forbid")

    projects: list[str] = Field(min_length=1)
    events: list[str] = Field(default_factory=lambda: list(EVENTS))

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        unknown = sorted(set(events) - set(EVENTS))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; the bot handles {sorted(EVENTS)}")
        if len(set(events)) != len(events) or not events:
            raise ValueError("list each event type once, and at least one")
        return events

    @field_validator("projects")
    @classmethod
    def _projects(cls, projects: list[str]) -> list[str]:
        lowered = [p.lower() for p in projects]
        if any(not p.strip() or "/" in p for p in projects) or len(set(lowered)) != len(lowered):
            raise ValueError("project names, each once, without '/'")
        return projects


def load_manifest(text: str, *, source: str) -> ServiceHooksFile:
    """The subscriptions file parsed and checked; ManifestError naming the problem."""
    return parse_manifest(text, ServiceHooksFile, source=source)


# ---------------------------------------------------------------------------------------
# The plan: pure
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Wanted:
    """One subscription: an event type of one project, delivered to one URL."""

    project: str  # the name, as people know it
    project_id: str
    event_type: str
    url: str
    publisher_id: str
    resource_version: str
    username: str = BASIC_AUTH_USERNAME
    status: str = "enabled"

    @property
    def where(self) -> str:
        return f"{self.project} {self.event_type}"


@dataclass(frozen=True, slots=True)
class Existing:
    """A webHooks/httpRequest subscription the organisation has."""

    id: str
    project_id: str
    event_type: str
    url: str
    publisher_id: str
    resource_version: str
    username: str
    status: str


def hook_url(public_url: str, org_slug: str) -> str:
    """Where Azure DevOps delivers an organisation's events (``/webhooks/azure/{org}``)."""
    return f"{public_url.rstrip('/')}/webhooks/azure/{org_slug}"


def wanted(manifest: ServiceHooksFile, project_ids: Mapping[str, str], url: str) -> list[Wanted]:
    """One subscription per (project, event type) of the file."""
    found = []
    for project in manifest.projects:
        for event in manifest.events:
            publisher, version = EVENTS[event]
            found.append(Wanted(project, project_ids[project], event, url, publisher, version))
    return found


def differences(want: Wanted, have: Existing) -> list[str]:
    """What a replace would change; empty when nothing."""
    found = []
    for name, now, then in (
        ("url", have.url, want.url),
        ("publisher", have.publisher_id, want.publisher_id),
        ("resourceVersion", have.resource_version, want.resource_version),
        ("basicAuthUsername", have.username, want.username),
        ("status", have.status, want.status),
    ):
        if now != then:
            found.append(f"{name} {now or '(none)'} -> {then}")
    return found


def plan(
    desired: Sequence[Wanted],
    existing: Sequence[Existing],
    *,
    our_urls: Iterable[str],
    project_names: Mapping[str, str],
    send_secret: bool,
    prune: bool,
) -> list[Change[Wanted]]:
    """Create, replace, leave or delete each subscription delivering to one of ``our_urls``;
    one the file no longer wants (or a second one for the same project and event) is deleted
    only with ``prune``."""
    ours = set(our_urls)
    mine = sorted((s for s in existing if s.url in ours), key=lambda s: s.id)
    taken: set[str] = set()
    changes: list[Change[Wanted]] = []
    for want in desired:
        same = [
            s for s in mine if (s.project_id, s.event_type) == (want.project_id, want.event_type)
        ]
        same.sort(key=lambda s: s.url != want.url)
        if not same:
            changes.append(Change("create", want.where, want))
            continue
        first = same[0]
        taken.add(first.id)
        why = differences(want, first)
        if send_secret and not why:
            why = ["basic-auth password sent again"]
        action: Literal["update", "noop"] = "update" if why else "noop"
        changes.append(Change(action, want.where, want, first.id, tuple(why)))
    wanted_keys = {(w.project_id, w.event_type) for w in desired}
    for sub in mine:
        if sub.id in taken:
            continue
        reason = (
            "a second subscription for this project and event"
            if (sub.project_id, sub.event_type) in wanted_keys
            else "no longer in the file"
        )
        name = project_names.get(sub.project_id, sub.project_id or "(all projects)")
        gone = Wanted(
            name, sub.project_id, sub.event_type, sub.url, sub.publisher_id, sub.resource_version
        )
        action_: Literal["delete", "keep"] = "delete" if prune else "keep"
        changes.append(Change(action_, gone.where, gone, sub.id, (reason,)))
    return changes


def subscription(want: Wanted, password: str) -> Subscription:
    """The SDK body of a create or replace."""
    return Subscription(
        publisher_id=want.publisher_id,
        event_type=want.event_type,
        resource_version=want.resource_version,
        consumer_id=CONSUMER_ID,
        consumer_action_id=CONSUMER_ACTION_ID,
        publisher_inputs={"projectId": want.project_id},
        consumer_inputs={
            "url": want.url,
            "basicAuthUsername": want.username,
            "basicAuthPassword": password,
        },
        status=want.status,
    )


def state_after(
    previous: Mapping[str, Any],
    *,
    url: str,
    changes: Sequence[Change[Wanted]],
    complete: bool,
    secret_sent: bool,
) -> dict[str, Any]:
    """The URLs that may still hold our subscriptions, and whether the secret must be sent
    again (an apply that sent it stopped before reaching every subscription)."""
    urls = {url} | {c.subject.url for c in changes if c.action == "keep"}
    if not complete:
        urls |= set(previous.get("urls", []))
    return {
        "urls": sorted(urls),
        "resend_secret": bool(not complete and (secret_sent or previous.get("resend_secret"))),
    }


# ---------------------------------------------------------------------------------------
# The azure-devops SDK: the calls (in bounded worker threads), errors translated in one place
# ---------------------------------------------------------------------------------------
class _NoRequestBodies(logging.Filter):
    """Drops the SDK's ``Request content: ...`` debug records: a subscription's body carries
    the basic-auth password, and debug logging must never put it in the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Request content")


def _quiet_request_bodies() -> None:
    sdk_log = logging.getLogger("azure.devops.client")
    if not any(isinstance(f, _NoRequestBodies) for f in sdk_log.filters):
        sdk_log.addFilter(_NoRequestBodies())


class AzureServiceHooks:
    """Reads and writes one organisation's service-hook subscriptions."""

    def __init__(self, *, base_url: str, token: str, org: str, shared: AzureShared) -> None:
        _quiet_request_bodies()
        self.base_url = base_url.rstrip("/")
        self._org = org
        self._shared = shared
        self._hooks: ServiceHooksClient = shared.sdk_client(
            ServiceHooksClient, self.base_url, token
        )
        self._core: CoreClient = shared.sdk_client(CoreClient, self.base_url, token)

    async def project_id(self, name: str) -> str:
        """The project's id (publisher inputs name projects by id)."""
        project = await self._call(f"read project {name}", lambda: self._core.get_project(name))
        return str(project.id)

    async def list(self) -> list[Existing]:
        """Every webHooks/httpRequest subscription of the organisation."""

        def fetch() -> list[Existing]:
            found = self._hooks.list_subscriptions(
                consumer_id=CONSUMER_ID, consumer_action_id=CONSUMER_ACTION_ID
            )
            return [_existing(s) for s in found or []]

        return await self._call("list service-hook subscriptions", fetch)

    async def create(self, want: Wanted, password: str) -> None:
        """Create the subscription (never retried blindly: a lost answer may hide it)."""
        body = subscription(want, password)
        await self._call(
            f"create the {want.where} subscription",
            lambda: self._hooks.create_subscription(body),
        )

    async def replace(self, want: Wanted, subscription_id: str, password: str) -> None:
        """Replace the subscription with the wanted one (same id)."""
        body = replace_id(subscription(want, password), subscription_id)
        await self._call(
            f"replace subscription {subscription_id}",
            lambda: self._hooks.replace_subscription(body, subscription_id),
        )

    async def delete(self, subscription_id: str) -> None:
        """Delete the subscription; one already gone counts as deleted."""

        def remove() -> None:
            try:
                self._hooks.delete_subscription(subscription_id)
            except AzureHttpError as exc:
                if exc.status != 404:
                    raise

        await self._call(f"delete subscription {subscription_id}", remove)

    async def _call(self, action: str, op: Callable[[], T]) -> T:
        try:
            return await self._shared.run(op)
        except Exception as exc:  # every SDK/HTTP failure: translated, never raw
            raise translate_error(
                exc, org=self._org, now=self._shared.now(), action=action
            ) from exc


def replace_id(body: Subscription, subscription_id: str) -> Subscription:
    """The body of a replace carries the id it replaces."""
    body.id = subscription_id
    return body


def _existing(sub: Any) -> Existing:
    inputs = sub.consumer_inputs or {}
    return Existing(
        id=str(sub.id),
        project_id=str((sub.publisher_inputs or {}).get("projectId", "")),
        event_type=str(sub.event_type or ""),
        url=str(inputs.get("url", "")),
        publisher_id=str(sub.publisher_id or ""),
        resource_version=str(sub.resource_version or ""),
        username=str(inputs.get("basicAuthUsername", "")),
        status=str(sub.status or ""),
    )


def is_gone(error: BaseException) -> bool:
    """True for Azure's not found."""
    return isinstance(error, NotFound)


def refusal(error: BaseException, *, writing: bool, project: str, org: str) -> str:
    """One line naming what Azure's refusal means: the PAT, its scope, or the permission."""
    cause = error.__cause__
    status = cause.status if isinstance(cause, AzureHttpError) else None
    again = f"`aac integration set azure --org {org} --token-stdin`"
    if status == 203 or (status == 401 and not writing):
        return (
            "Azure DevOps refused the organisation's personal access token (expired, revoked, "
            f"or without the Service Hooks scope); set a new one with {again}"
        )
    if status in (401, 403):
        permission = "Edit subscriptions" if writing else "View subscriptions"
        return (
            f'the token\'s user lacks the service-hooks permission "{permission}" on project '
            f'{project} (Project Administrators have it), or the PAT lacks the "Service Hooks '
            '(Read, write & manage)" scope'
        )
    if status == 404 and not writing:
        return f"project {project} was not found, or the token's user cannot see it"
    return str(error)
