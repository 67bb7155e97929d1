"""The App's own webhook, as the App (its JWT): point it at this deployment, compare the App
with its manifest, and redeliver what failed while the bot was away.

GitHub never retries a failed delivery by itself; ``redeliver_failed`` asks for each one again
(``POST /app/hook/deliveries/{id}/attempts``) unless the same event (its ``guid``) has been
delivered successfully since.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import gidgethub
import httpx
import jwt as pyjwt

from providers.base import AuthFailed, ProviderError, RateLimited
from providers.github.auth import AppCredentials, utc_now
from providers.github.errors import translate_error
from providers.github.manifest import PERMISSION_LEVELS, AppManifest, web_url_for_api
from providers.github.provider import GitHubClient

DELIVERIES_PER_PAGE = 100
# One run asks for at most this many redeliveries (the rest wait for the next run), so a long
# outage does not turn into a burst GitHub's secondary rate limits punish.
MAX_REDELIVERIES_PER_RUN = 500


# ---------------------------------------------------------------------------------------
# Pure: drift and the redelivery plan
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Drift:
    """How the App on GitHub differs from its manifest."""

    permissions_to_raise: Mapping[str, tuple[str | None, str]] = field(default_factory=dict)
    permissions_beyond: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    events_missing: tuple[str, ...] = ()
    events_extra: tuple[str, ...] = ()

    @property
    def none(self) -> bool:
        return not (
            self.permissions_to_raise
            or self.permissions_beyond
            or self.events_missing
            or self.events_extra
        )

    def lines(self) -> list[str]:
        """One line per difference, as ``aac github-app sync`` prints them."""
        out = [
            f"permission {name}: {have or 'none'} on GitHub, the manifest needs {want}"
            for name, (have, want) in sorted(self.permissions_to_raise.items())
        ]
        out += [
            f"permission {name}: {have} on GitHub, the manifest asks only {want or 'none'}"
            for name, (have, want) in sorted(self.permissions_beyond.items())
        ]
        out += [f"event {name}: not subscribed on GitHub" for name in self.events_missing]
        out += [
            f"event {name}: subscribed on GitHub, not in the manifest" for name in self.events_extra
        ]
        return out


def _rank(level: str | None) -> int:
    return PERMISSION_LEVELS.index(level) + 1 if level in PERMISSION_LEVELS else 0


def drift(manifest: AppManifest, app: Mapping[str, Any]) -> Drift:
    """Compare ``GET /app``'s permissions and events with the manifest's."""
    have: dict[str, str] = {str(k): str(v) for k, v in (app.get("permissions") or {}).items()}
    want = dict(manifest.permissions)
    subscribed = {str(e) for e in app.get("events") or []}
    return Drift(
        permissions_to_raise={
            name: (have.get(name), level)
            for name, level in want.items()
            if _rank(have.get(name)) < _rank(level)
        },
        permissions_beyond={
            name: (level, want.get(name))
            for name, level in have.items()
            if _rank(level) > _rank(want.get(name))
        },
        events_missing=tuple(sorted(set(manifest.events) - subscribed)),
        events_extra=tuple(sorted(subscribed - set(manifest.events))),
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt GitHub made to deliver an event (``GET /app/hook/deliveries``)."""

    id: int
    guid: str
    delivered_at: datetime
    status_code: int
    event: str
    redelivery: bool

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def refused(self) -> bool:
        """The bot answered and said no (a 4xx such as a bad signature): sending the same
        delivery again gets the same answer, unlike a timeout, no connection or a 5xx."""
        return 400 <= self.status_code < 500 and self.status_code not in (408, 429)


def parse_delivery(item: Mapping[str, Any]) -> Delivery:
    """A delivery from GitHub's JSON; ProviderError when it lacks what the plan needs."""
    try:
        when = datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00"))
        return Delivery(
            id=int(item["id"]),
            guid=str(item["guid"]),
            delivered_at=when,
            status_code=int(item.get("status_code") or 0),
            event=str(item.get("event") or ""),
            redelivery=bool(item.get("redelivery")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError("GitHub returned a malformed webhook delivery") from exc


def plan_redeliveries(
    deliveries: Iterable[Delivery], since: datetime, *, include_refused: bool = False
) -> list[Delivery]:
    """The latest failed attempt of each event since ``since`` that no attempt delivered;
    events whose latest attempt the bot refused only with ``include_refused``."""
    latest: dict[str, Delivery] = {}
    delivered: set[str] = set()
    for item in deliveries:
        if item.delivered_at < since:
            continue
        if item.succeeded:
            delivered.add(item.guid)
        elif item.guid not in latest or item.delivered_at > latest[item.guid].delivered_at:
            latest[item.guid] = item
    failed = [
        d
        for guid, d in latest.items()
        if guid not in delivered and (include_refused or not d.refused)
    ]
    return sorted(failed, key=lambda d: d.delivered_at)


# ---------------------------------------------------------------------------------------
# I/O: the App's hook endpoints
# ---------------------------------------------------------------------------------------
class AppHookAdmin:
    """The ``/app`` and ``/app/hook/*`` endpoints, called with a fresh App JWT each time."""

    def __init__(
        self,
        *,
        app_id: int | str,
        private_key: str,
        http: httpx.AsyncClient,
        api_url: str,
        now: Callable[[], datetime] = utc_now,
        requester: str = "aac-bot",
    ) -> None:
        self._credentials = AppCredentials(str(app_id), private_key)
        self.api_url = api_url.rstrip("/")
        self._now = now
        self._gh = GitHubClient(http, requester=requester, base_url=self.api_url)

    def _jwt(self) -> str:
        try:
            return self._credentials.jwt()
        except (ValueError, TypeError, pyjwt.PyJWTError) as exc:
            raise AuthFailed(
                f"the private key of App {self._credentials.app_id} cannot sign a JWT"
            ) from exc

    def _error(self, exc: BaseException, action: str) -> ProviderError:
        return translate_error(exc, now=self._now(), action=action)

    async def app(self) -> dict[str, Any]:
        """``GET /app``: the App with its permissions, events and owner."""
        try:
            data = await self._gh.getitem("/app", jwt=self._jwt())
        except (gidgethub.HTTPException, httpx.TransportError) as exc:
            raise self._error(exc, "read the App") from exc
        if not isinstance(data, dict):
            raise ProviderError("GitHub read the App: expected an object")
        return data

    async def set_hook(self, *, url: str, secret: str) -> None:
        """``PATCH /app/hook/config``: deliver JSON to ``url``, signed with ``secret``."""
        body = {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}
        try:
            await self._gh.patch("/app/hook/config", data=body, jwt=self._jwt())
        except (gidgethub.HTTPException, httpx.TransportError) as exc:
            raise self._error(exc, "update the App's webhook") from exc

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Every delivery GitHub still lists, newest first, page by page (a cursor)."""
        url = f"/app/hook/deliveries?per_page={DELIVERIES_PER_PAGE}"
        try:
            async for item in self._gh.getiter(url, jwt=self._jwt()):
                yield parse_delivery(item)
        except (gidgethub.HTTPException, httpx.TransportError) as exc:
            raise self._error(exc, "list webhook deliveries") from exc

    async def redeliver(self, delivery_id: int) -> None:
        """``POST /app/hook/deliveries/{id}/attempts``: GitHub sends it again (202)."""
        try:
            await self._gh.post(
                "/app/hook/deliveries/{delivery_id}/attempts",
                {"delivery_id": delivery_id},
                data=b"",
                jwt=self._jwt(),
            )
        except (gidgethub.HTTPException, httpx.TransportError) as exc:
            raise self._error(exc, f"redeliver delivery {delivery_id}") from exc


def settings_url(api_url: str, app: Mapping[str, Any]) -> str:
    """The App's permissions page, where only a person can raise what it may do."""
    web = web_url_for_api(api_url)
    slug = str(app.get("slug") or "")
    owner = app.get("owner") or {}
    if str(owner.get("type") or "") == "Organization" and owner.get("login"):
        return f"{web}/organizations/{owner['login']}/settings/apps/{slug}/permissions"
    return f"{web}/settings/apps/{slug}/permissions"


@dataclass(slots=True)
class RedeliveryReport:
    """What one redelivery run saw and asked for."""

    seen: int = 0
    redelivered: list[Delivery] = field(default_factory=list)
    failed: list[tuple[Delivery, str]] = field(default_factory=list)
    capped: int = 0  # failed deliveries left for the next run


async def redeliver_failed(
    admin: AppHookAdmin,
    *,
    since: timedelta,
    now: datetime,
    include_refused: bool = False,
    limit: int = MAX_REDELIVERIES_PER_RUN,
) -> RedeliveryReport:
    """Redeliver each event that failed within ``since`` and was not delivered since.

    GitHub lists newest first, so listing stops at the first delivery older than the window.
    A refused redelivery is reported and the rest go on; a refused listing raises.
    """
    start = now - since
    seen: list[Delivery] = []
    async for item in admin.deliveries():
        if item.delivered_at < start:
            break
        seen.append(item)
    plan = plan_redeliveries(seen, start, include_refused=include_refused)
    report = RedeliveryReport(seen=len(seen), capped=max(len(plan) - limit, 0))
    for index, item in enumerate(plan[:limit]):
        try:
            await admin.redeliver(item.id)
        except RateLimited:
            # Asking on would only extend the block: the rest wait for the next run.
            report.capped += len(plan[:limit]) - index
            break
        except ProviderError as exc:
            report.failed.append((item, str(exc)))
        else:
            report.redelivered.append(item)
    return report
