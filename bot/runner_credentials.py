"""The short-lived credential a testing node fetches the repository with, and where from.

GitHub: an installation token scoped to the one repository with ``contents: read``, never the
organisation's own token (it reaches every repository it can): a repository no installation
covers is not run unless the organisation names a mirror. GitLab and Azure DevOps: the
organisation's token. The node holds it for the job's lifetime only; it is never stored by the
bot nor written to disk or log by the node.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from providers.github.auth import AppCredentials, mint_installation_token, utc_now
from providers.github.installations import find_installation
from providers.github.provider import GitHubClient
from storage.models import GithubApp, Installation, Organization, TestCycle
from storage.orgs import integration_token
from storage.secret_fields import github_app_owner
from storage.vault import Vault

GITHUB_API = "https://api.github.com"
# The organisation's own token does not expire when the job ends; the node forgets it then.
TOKEN_LIFETIME = timedelta(hours=1)
USER_AGENT = "aac-bot-runner"


class CredentialUnavailable(Exception):
    """No way to read this repository: the message says what to configure."""


@dataclass(frozen=True, slots=True)
class JobCredential:
    """HTTP basic credentials for git over HTTPS; the password never appears in a repr."""

    username: str
    password: str = field(repr=False)
    expires_at: datetime


def github_web_url(api_url: str) -> str:
    """github.com for its API; a GitHub Enterprise Server's host for its ``/api/v3``."""
    api_url = api_url.rstrip("/")
    if api_url == GITHUB_API:
        return "https://github.com"
    return api_url.removesuffix("/api/v3")


def _mirror(org: Organization) -> str | None:
    """The organisation's mirror (``settings.runners.clone_url``, with ``{repository}``)."""
    template = ((org.settings or {}).get("runners") or {}).get("clone_url")
    return str(template) if template else None


def default_clone_url(org: Organization, cycle: TestCycle) -> str:
    """Where the repository of ``cycle`` is fetched from, unless the organisation names a
    mirror (``settings.runners.clone_url``, with ``{repository}``)."""
    template = _mirror(org)
    if template:
        return str(template).replace("{repository}", cycle.repository)
    integration = org.integrations.get(_integration_name(cycle.source))
    base = integration.base_url if integration is not None else None
    if cycle.source == "github":
        api_url = str(cycle.context_extra.get("api_url") or base or GITHUB_API)
        return f"{github_web_url(api_url)}/{cycle.repository}.git"
    if cycle.source == "gitlab":
        return f"{(base or 'https://gitlab.com').rstrip('/')}/{cycle.repository}.git"
    if cycle.source in ("azure", "azure_devops"):
        # repository = "organisation/project/name" on dev.azure.com
        parts = cycle.repository.split("/")
        host = (base or "https://dev.azure.com").rstrip("/")
        if len(parts) == 3:
            return f"{host}/{parts[0]}/{parts[1]}/_git/{parts[2]}"
        return f"{host}/{cycle.repository}"
    raise CredentialUnavailable(
        f"cannot tell where {cycle.repository} ({cycle.source}) is cloned from; set the "
        "organisation's runner clone URL (`aac runner settings --org ORG --clone-url URL`)"
    )


def _integration_name(source: str) -> str:
    return "azure" if source == "azure_devops" else source


def _no_installation(org: Organization, cycle: TestCycle) -> CredentialUnavailable:
    return CredentialUnavailable(
        f"no GitHub App installation linked to organisation {org.slug} covers "
        f"{cycle.repository}, so a testing node has no token for that repository alone: "
        "install the App on the repository and link the installation (`aac github-app link "
        f"--installation ID --org {org.slug}`), or set a mirror that needs no credential "
        f"(`aac runner settings --org {org.slug} --clone-url URL`)"
    )


async def job_clone_url(session: AsyncSession, org: Organization, cycle: TestCycle) -> str:
    """Where a job for ``cycle`` fetches from; CredentialUnavailable, before the job is
    queued, when no credential could be had (a GitHub repository no installation covers)."""
    url = default_clone_url(org, cycle)
    github_direct = cycle.source == "github" and _mirror(org) is None
    if github_direct and await _installation_of(session, org, cycle) is None:
        raise _no_installation(org, cycle)
    return url


async def mint_job_credential(
    session: AsyncSession,
    vault: Vault,
    org: Organization,
    cycle: TestCycle,
    *,
    http: httpx.AsyncClient | None = None,
) -> JobCredential | None:
    """The credential a node fetches ``cycle``'s repository with; None when none is needed
    (a mirror on the node's own disk); CredentialUnavailable when none can be had."""
    if default_clone_url(org, cycle).startswith("file://"):
        return None
    if cycle.source == "github":
        scoped = await _github_installation_token(session, vault, org, cycle, http)
        if scoped is not None:
            return scoped
        if _mirror(org) is not None:
            return None  # the organisation's own mirror, which needs no credential
        raise _no_installation(org, cycle)  # uninstalled since the job was queued
    token = integration_token(vault, org, _integration_name(cycle.source))
    if token is None:
        raise CredentialUnavailable(
            f"organisation {org.slug} has no {cycle.source} credential to fetch "
            f"{cycle.repository} with (`aac integration set {_integration_name(cycle.source)}`)"
        )
    username = {"github": "x-access-token", "gitlab": "oauth2"}.get(cycle.source, "aac")
    return JobCredential(username, token.reveal(), utc_now() + TOKEN_LIFETIME)


async def _github_installation_token(
    session: AsyncSession,
    vault: Vault,
    org: Organization,
    cycle: TestCycle,
    http: httpx.AsyncClient | None,
) -> JobCredential | None:
    installation = await _installation_of(session, org, cycle)
    if installation is None:
        return None
    app = await session.get(GithubApp, installation.github_app_id)
    if app is None:
        return None
    key = vault.decrypt(app.private_key_enc, github_app_owner(app.id, "private_key"))
    credentials = AppCredentials(str(app.app_id), key.reveal())
    name = cycle.repository.split("/", 1)[-1]
    async with _client(http) as client:
        gh = GitHubClient(client, requester=USER_AGENT, base_url=app.api_url)
        minted = await mint_installation_token(
            gh,
            credentials,
            installation.installation_id,
            now=utc_now(),
            repositories=[name],
            permissions={"contents": "read"},
        )
    return JobCredential("x-access-token", minted.token, minted.expires_at)


async def _installation_of(
    session: AsyncSession, org: Organization, cycle: TestCycle
) -> Installation | None:
    raw_id = cycle.context_extra.get("installation_id")
    return await find_installation(
        session, org.id, cycle.repository, int(raw_id) if raw_id is not None else None
    )


@contextlib.asynccontextmanager
async def _client(http: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """The caller's client, or a short-lived one closed afterwards."""
    if http is not None:
        yield http
        return
    async with httpx.AsyncClient(timeout=30) as own:
        yield own
