"""The GitHub App manifest (``app-manifests/github-app.yml``) and GitHub's manifest flow.

The file becomes the manifest JSON that GitHub's "register an App from a manifest" page takes.
A one-page local server posts it there; GitHub sends the browser back with a temporary ``code``
and the ``state`` it was given, which is checked; the code is exchanged, once and within the
hour, for the App's credentials at ``POST /app-manifests/{code}/conversions``.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import gidgethub
import httpx
import uvicorn
import yaml
from gidgethub.abc import GitHubAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from providers.base import NotFound, ProviderError, Transient
from providers.github.errors import translate_error

PUBLIC_URL_PLACEHOLDER = "${AAC_PUBLIC_URL}"
PERMISSION_LEVELS = ("read", "write", "admin")
GITHUB_COM = "https://github.com"
GITHUB_COM_API = "https://api.github.com"
# GitHub's limit on an App's name.
MAX_NAME_LENGTH = 34
# Our own keys: read from the file, never sent to GitHub.
LOCAL_KEYS = frozenset({"always_delivered_events"})
GITHUB_KEYS = frozenset(
    {
        "name",
        "description",
        "url",
        "hook_attributes",
        "public",
        "default_permissions",
        "default_events",
        "callback_urls",
        "setup_url",
        "request_oauth_on_install",
        "setup_on_update",
    }
)


class ManifestError(ValueError):
    """The manifest file is unreadable or malformed; the message names the file and the key."""


class ManifestFlowError(Exception):
    """The manifest flow ended without an App; one line for the operator."""


# ---------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AppManifest:
    """The App as the manifest file describes it, with the public URL filled in."""

    name: str
    url: str
    hook_url: str
    permissions: Mapping[str, str]
    events: tuple[str, ...]
    always_delivered_events: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # other GitHub keys, passed on

    @property
    def handled_events(self) -> frozenset[str]:
        """Every event the App receives: those it subscribes to and those GitHub always sends."""
        return frozenset(self.events) | frozenset(self.always_delivered_events)

    def github_json(self, redirect_url: str) -> dict[str, Any]:
        """The manifest GitHub's form takes, sending the browser back to ``redirect_url``."""
        return {
            **self.extra,
            "name": self.name,
            "url": self.url,
            "hook_attributes": {"url": self.hook_url, "active": True},
            "redirect_url": redirect_url,
            "default_permissions": dict(self.permissions),
            "default_events": list(self.events),
        }


def load_manifest(path: Path, *, public_url: str) -> AppManifest:
    """Read and check the manifest file; ManifestError naming the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_manifest(text, public_url=public_url, source=str(path))


def parse_manifest(text: str, *, public_url: str, source: str = "github-app.yml") -> AppManifest:
    """The manifest from YAML text, ``${AAC_PUBLIC_URL}`` replaced with ``public_url``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: expected a mapping of manifest keys")
    unknown = sorted(set(map(str, data)) - GITHUB_KEYS - LOCAL_KEYS)
    if unknown:
        raise ManifestError(f"{source}: unknown key(s) {', '.join(unknown)}")
    filled = _fill(data, public_url.rstrip("/"), source)

    def text_field(key: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ManifestError(f"{source}: {key} must be a non-empty string")
        return str(value)

    def url_field(key: str, value: Any) -> str:
        url = text_field(key, value)
        if urlsplit(url).scheme not in ("http", "https"):
            raise ManifestError(f"{source}: {key} must be an http(s) URL, not {url!r}")
        return url

    def names(key: str) -> tuple[str, ...]:
        value = filled.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ManifestError(f"{source}: {key} must be a list of event names")
        return tuple(value)

    name = text_field("name", filled.get("name"))
    if len(name) > MAX_NAME_LENGTH:
        raise ManifestError(f"{source}: name is longer than GitHub's {MAX_NAME_LENGTH} characters")
    hook = filled.get("hook_attributes")
    if not isinstance(hook, dict):
        raise ManifestError(f"{source}: hook_attributes.url is required")
    permissions = filled.get("default_permissions") or {}
    if not isinstance(permissions, dict):
        raise ManifestError(f"{source}: default_permissions must map permission to level")
    for permission, level in permissions.items():
        if level not in PERMISSION_LEVELS:
            raise ManifestError(
                f"{source}: default_permissions.{permission} must be one of "
                f"{', '.join(PERMISSION_LEVELS)}, not {level!r}"
            )
    events, always = names("default_events"), names("always_delivered_events")
    if set(events) & set(always):
        both = ", ".join(sorted(set(events) & set(always)))
        raise ManifestError(f"{source}: {both} both in default_events and always_delivered_events")
    extra = {
        key: value
        for key, value in filled.items()
        if key in GITHUB_KEYS
        and key not in ("name", "url", "hook_attributes", "default_permissions", "default_events")
    }
    return AppManifest(
        name=name,
        url=url_field("url", filled.get("url")),
        hook_url=url_field("hook_attributes.url", hook.get("url")),
        permissions={str(k): str(v) for k, v in permissions.items()},
        events=events,
        always_delivered_events=always,
        extra=extra,
    )


def _fill(value: Any, public_url: str, source: str) -> Any:
    """``value`` with the public URL placeholder replaced; any other ``${...}`` is an error."""
    if isinstance(value, dict):
        return {str(k): _fill(v, public_url, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, public_url, source) for v in value]
    if isinstance(value, str):
        filled = value.replace(PUBLIC_URL_PLACEHOLDER, public_url)
        if "${" in filled:
            raise ManifestError(
                f"{source}: only {PUBLIC_URL_PLACEHOLDER} can be substituted, found {value!r}"
            )
        return filled
    return value


# ---------------------------------------------------------------------------------------
# Hosts
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GithubHost:
    """Where a GitHub's web pages and REST API live (github.com or GitHub Enterprise Server)."""

    web_url: str
    api_url: str

    def new_app_url(self, org: str | None, state: str) -> str:
        """The page that registers an App from a manifest, for an account or an organisation."""
        owner = f"/organizations/{org}" if org else ""
        return f"{self.web_url}{owner}/settings/apps/new?{urlencode({'state': state})}"


def github_host(github_url: str) -> GithubHost:
    """github.com's API is api.github.com; a GitHub Enterprise Server's is ``/api/v3``."""
    web = github_url.rstrip("/")
    if web == GITHUB_COM:
        return GithubHost(GITHUB_COM, GITHUB_COM_API)
    return GithubHost(web, web + "/api/v3")


def web_url_for_api(api_url: str) -> str:
    """The web pages of the GitHub whose REST API is ``api_url``."""
    api = api_url.rstrip("/")
    if api == GITHUB_COM_API:
        return GITHUB_COM
    return api.removesuffix("/api/v3")


# ---------------------------------------------------------------------------------------
# The code exchange
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreatedApp:
    """What GitHub returns once for a new App; the secrets never appear in a repr."""

    app_id: int
    slug: str
    html_url: str
    owner_login: str
    client_id: str
    private_key: str = field(repr=False)
    webhook_secret: str | None = field(repr=False)
    client_secret: str = field(repr=False)

    @property
    def install_url(self) -> str:
        """Where a person installs the App on their account or organisation."""
        return f"{self.html_url.rstrip('/')}/installations/new"


async def exchange_code(gh: GitHubAPI, code: str, *, now: datetime) -> CreatedApp:
    """``POST /app-manifests/{code}/conversions`` (no credentials): the App's credentials.

    GitHub answers 404 for a code it does not know: expired (after an hour) or used already.
    """
    api_url = str(gh.base_url).rstrip("/")
    try:
        data = await gh.post("/app-manifests/{code}/conversions", {"code": code}, data=b"")
    except (gidgethub.HTTPException, httpx.TransportError) as exc:
        error = translate_error(exc, now=now, action="convert the manifest code")
        if isinstance(error, NotFound):
            raise ManifestFlowError(
                "GitHub refused the code: it expired (codes last one hour) or was used "
                "already; nothing stored. Run `aac github-app create` again"
            ) from None
        if isinstance(error, Transient):
            raise ManifestFlowError(
                f"cannot reach GitHub at {api_url} ({error}); nothing stored. Check the "
                "network and run `aac github-app create` again within the hour"
            ) from None
        raise ManifestFlowError(f"{error}; nothing stored") from None
    try:
        return CreatedApp(
            app_id=int(data["id"]),
            slug=str(data["slug"]),
            html_url=str(data["html_url"]),
            owner_login=str((data.get("owner") or {}).get("login") or ""),
            client_id=str(data["client_id"]),
            private_key=str(data["pem"]),
            webhook_secret=None
            if data.get("webhook_secret") is None
            else str(data["webhook_secret"]),
            client_secret=str(data["client_secret"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError("GitHub returned a malformed App for the manifest code") from exc


# ---------------------------------------------------------------------------------------
# The local form server
# ---------------------------------------------------------------------------------------
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>{title}</h1>
{body}
</body></html>
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status)


def form_page(action: str, manifest: Mapping[str, Any]) -> str:
    """The HTML body of the one form that posts ``manifest`` to GitHub's ``action`` page."""
    value = html.escape(json.dumps(manifest), quote=True)
    return (
        f"<p>This registers the GitHub App <b>{html.escape(str(manifest['name']))}</b> on "
        f"{html.escape(urlsplit(action).netloc)}, with the permissions and events of "
        "app-manifests/github-app.yml. GitHub asks you to confirm its name.</p>\n"
        f'<form method="post" action="{html.escape(action, quote=True)}">\n'
        f'<input type="hidden" name="manifest" value="{value}">\n'
        '<button type="submit">Register the App on GitHub</button>\n</form>'
    )


class ManifestFlow:
    """A one-shot local web server: the form at ``/``, GitHub's redirect at ``/callback``.

    The first redirect decides the outcome: a wrong ``state`` ends the flow (a stale tab or a
    forged link), a right one has its code exchanged by ``exchange``.
    """

    def __init__(
        self,
        manifest: AppManifest,
        host: GithubHost,
        *,
        exchange: Callable[[str], Awaitable[CreatedApp]],
        org: str | None = None,
        bind: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._manifest = manifest
        self._host = host
        self._org = org
        self._exchange = exchange
        self._state = secrets.token_urlsafe(32)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((bind, port))
        except OSError as exc:
            self._socket.close()
            raise ManifestFlowError(
                f"cannot listen on {bind}:{port} for the form: {exc.strerror or exc}; "
                "choose another --port"
            ) from None
        # Listening at once: a browser opened before the server starts waits in the backlog.
        self._socket.listen(16)
        self.port: int = self._socket.getsockname()[1]
        self._outcome: asyncio.Future[CreatedApp] | None = None
        self._claimed = False

    @property
    def form_url(self) -> str:
        """The page the operator opens in a browser."""
        # The browser reaches it on its own loopback (directly, or by a forwarded port), also
        # when it listens on all interfaces inside a container.
        return f"http://127.0.0.1:{self.port}/"

    @property
    def redirect_url(self) -> str:
        """Where GitHub sends the browser back with the code and the state."""
        return f"http://127.0.0.1:{self.port}/callback"

    async def run(self, wait_seconds: float) -> CreatedApp:
        """Serve until the first redirect is handled (or ``wait_seconds`` pass)."""
        self._outcome = asyncio.get_running_loop().create_future()
        app = Starlette(
            routes=[Route("/", self._form), Route("/callback", self._callback)],
        )
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[self._socket]))
        waiting: set[asyncio.Future[Any]] = {self._outcome, serving}
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=wait_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if self._outcome in done:
                # Let the browser receive the last page before the server goes away.
                await asyncio.sleep(0.2)
                return self._outcome.result()
            if serving in done:
                serving.result()
                raise ManifestFlowError("the form server stopped before GitHub answered")
            raise ManifestFlowError(
                f"no answer from GitHub within {wait_seconds:g} s; nothing stored. Run "
                "`aac github-app create` again"
            )
        finally:
            server.should_exit = True
            await serving
            self._socket.close()

    async def _form(self, request: Request) -> Response:
        action = self._host.new_app_url(self._org, self._state)
        manifest = self._manifest.github_json(self.redirect_url)
        return _page("Register aac-bot's GitHub App", form_page(action, manifest))

    async def _callback(self, request: Request) -> Response:
        if self._claimed or self._outcome is None:
            return _page("Already done", "<p>This flow is over; see the terminal.</p>", 410)
        self._claimed = True
        state = request.query_params.get("state", "")
        code = request.query_params.get("code", "")
        if not hmac.compare_digest(state.encode(), self._state.encode()):
            self._outcome.set_exception(
                ManifestFlowError(
                    "GitHub's redirect carried the wrong state (a stale browser tab, or a link "
                    "someone else made); nothing stored. Run `aac github-app create` again"
                )
            )
            return _page("Wrong state", "<p>Nothing stored; see the terminal.</p>", 400)
        if not code:
            self._outcome.set_exception(
                ManifestFlowError("GitHub's redirect carried no code; nothing stored")
            )
            return _page("No code", "<p>Nothing stored; see the terminal.</p>", 400)
        try:
            created = await self._exchange(code)
        except (ManifestFlowError, ProviderError) as exc:
            self._outcome.set_exception(
                exc if isinstance(exc, ManifestFlowError) else ManifestFlowError(str(exc))
            )
            return _page("Not created", f"<p>{html.escape(str(exc))}</p>", 502)
        self._outcome.set_result(created)
        link = html.escape(created.install_url, quote=True)
        return _page(
            f"GitHub App {created.slug} registered",
            f'<p>Next: <a href="{link}">install it</a> on your repositories. '
            "The terminal says what was stored.</p>",
        )
