"""What every event handler receives: the runtime, the shared provider state, and for an
organisation's event who it is for, its provider and the one write of its job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from providers.base import CiProvider
from providers.context import CiContext
from providers.factory import NullProvider, ProviderShared
from providers.registry import EventScope

T = TypeVar("T")


@dataclass(slots=True)
class HandlerContext:
    runtime: Runtime
    shared: ProviderShared


class Write(Protocol):
    """Commits ``apply``'s changes and marks the delivery processed, in one transaction; with
    ``only_if_done`` a falsy result (nothing done) leaves the delivery untouched."""

    def __call__(
        self, apply: Callable[[AsyncSession], Awaitable[T]], *, only_if_done: bool = False
    ) -> Awaitable[T]: ...


@dataclass(frozen=True, slots=True)
class EventRun:
    """One event's handling: the process's context, the job's write, and for an
    organisation's event its scope and provider (built by the dispatcher, never by a handler).
    """

    hctx: HandlerContext
    write: Write
    scope: EventScope | None = None
    provider: CiProvider | NullProvider = field(
        default_factory=lambda: NullProvider("the event names no organisation")
    )
    # The App whose secret verified the delivery (``github_apps.id``), where one URL serves
    # several Apps.
    app_id: int | None = None

    @property
    def org_id(self) -> int:
        assert self.scope is not None, "a scoped handler ran without a scope"
        return self.scope.org.id

    @property
    def host(self) -> str:
        assert self.scope is not None, "a scoped handler ran without a scope"
        return self.scope.host


def installation_extra(installation_id: int | None) -> dict[str, Any]:
    """The context ``extra`` a cycle opened by an App installation's event carries (the
    factory finds the installation by it)."""
    return {} if installation_id is None else {"installation_id": installation_id}


class SuiteEvent(Protocol):
    """What a change's and a pipeline's events both say of the commit and change they are for."""

    @property
    def source(self) -> str: ...
    @property
    def repository(self) -> str: ...
    @property
    def sha(self) -> str: ...
    @property
    def number(self) -> int | None: ...
    @property
    def ref(self) -> str | None: ...
    @property
    def base_ref(self) -> str | None: ...
    @property
    def installation_id(self) -> int | None: ...


def suite_context(
    run: EventRun,
    event: SuiteEvent,
    suite: str,
    *,
    trigger: str,
    extra: Mapping[str, Any] | None = None,
) -> CiContext:
    """The context of ``suite``'s cycle for the event's commit and change, started by
    ``trigger``; ``extra`` is kept beside the App installation (when there is one)."""
    return CiContext(
        source=event.source,
        host=run.host,
        repository=event.repository,
        sha=event.sha,
        pr=event.number,
        ref=event.ref,
        base_ref=event.base_ref,
        suite=suite,
        trigger=trigger,
        extra={**installation_extra(event.installation_id), **(extra or {})},
    )


async def nothing(_session: AsyncSession) -> None:
    """The write of an event that changes nothing: only its delivery is marked processed."""
    return None
