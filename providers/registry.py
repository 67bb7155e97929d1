"""The SCM packages this bot speaks, and what the core may ask of each.

The core never names an SCM: the web app mounts each package's webhook, the CLI adds each
package's command group, the factory builds each package's provider, and the webhook job
parses each package's events, all from the entries below. A new SCM is a new package under
``providers/`` and one line in ``packages()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from config.settings import Settings
from providers.base import CiProvider
from providers.context import CiContext
from providers.events import Event, Origin
from providers.inbound import VerifiedDelivery
from providers.shared import NullProvider, ProviderShared
from storage.models import Organization
from storage.vault import Vault


@dataclass(frozen=True, slots=True)
class EventScope:
    """Who an event is for: the organisation, and the SCM host its cycles are keyed by (the
    host the organisation's credentials for that SCM point at, which the payload only hints)."""

    org: Organization
    host: str


class WebhookReceiver(Protocol):
    """Verifies one SCM's deliveries; the core's intake stores and queues them."""

    # Lower-case header names verification reads; intake ignores every other header.
    headers: frozenset[bytes]
    # The header carrying the SCM's delivery id (a request id for the logs).
    delivery_header: str

    async def verify(
        self, headers: Mapping[str, str], body: bytes, org_slug: str | None
    ) -> VerifiedDelivery:
        """The verified delivery, or WebhookRejected (401/400) before anything is stored."""
        ...


@dataclass(frozen=True, slots=True)
class WebhookRoute:
    """Where an SCM's webhooks arrive: ``path`` exactly, or ``path/{org}`` with ``per_org``."""

    path: str
    per_org: bool
    receiver: Callable[[async_sessionmaker[AsyncSession], Vault], WebhookReceiver]


class CliRuntime(Protocol):
    """What a package's commands may use of the running process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    vault: Vault


# Runs a coroutine with a runtime, mapping storage failures to CLI errors (bot/commands.py).
WithRuntime = Callable[[Settings, Callable[[Any], Awaitable[int]]], int]


@dataclass(frozen=True, slots=True)
class CliGroup:
    """An SCM's ``aac <name> ...`` commands."""

    name: str
    add_parser: Callable[[Any], None]  # given the ``aac`` subparsers action
    run: Callable[..., int]  # (args, settings, with_runtime=...) -> exit code


ProviderBuilder = Callable[
    [AsyncSession, Vault, Organization, CiContext, ProviderShared],
    Awaitable[CiProvider | NullProvider],
]


@dataclass(frozen=True, slots=True)
class ScmPackage:
    """One SCM: its inbound half, its provider, and its commands."""

    source: str  # the cycles' ``source``: "github", "gitlab"
    default_host: str  # the public service's API host
    webhook: WebhookRoute
    # (event name, payload, the bot's own logins) -> a neutral event; pure.
    parse_event: Callable[[str, dict[str, Any], set[str]], Event]
    # The logins the bot's own writes appear under, so its own events are ignored.
    bot_logins: Callable[[AsyncSession, int | None], Awaitable[set[str]]]
    # The organisation (and host) an event is for, given the delivery's organisation (when its
    # webhook URL named one) and the App that verified it (when one URL serves several Apps).
    # None: nobody this bot serves.
    scope: Callable[[AsyncSession, Origin, int | None, int | None], Awaitable[EventScope | None]]
    # The host an API-created cycle of this SCM is keyed by, when the caller names none.
    host_for_org: Callable[[AsyncSession, Organization], Awaitable[str]]
    build_provider: ProviderBuilder
    cli: CliGroup | None = None


def packages() -> tuple[ScmPackage, ...]:
    """Every SCM package, in the order their commands are listed."""
    from providers.azure_devops.package import PACKAGE as AZURE
    from providers.github.package import PACKAGE as GITHUB
    from providers.gitlab.package import PACKAGE as GITLAB

    return (GITHUB, GITLAB, AZURE)


def cli_groups() -> tuple[CliGroup, ...]:
    """Every SCM package's ``aac`` command group."""
    return tuple(package.cli for package in packages() if package.cli is not None)


def package_for(source: str) -> ScmPackage | None:
    """The package publishing cycles of ``source``; None for sources that publish nowhere."""
    for package in packages():
        if package.source == source:
            return package
    return None
