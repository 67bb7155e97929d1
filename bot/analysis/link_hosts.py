"""Which hosts the model's answer may link to: only what the operator configured.

A cycle's own fields (its pipeline URL, its repository) come from whoever holds a CI key, so
they never widen the list by themselves: a pipeline URL's host counts only when the operator
named it as one of the organisation's CI hosts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlparse

# Where each SCM lives when its integration names no base URL.
DEFAULT_SCM_HOSTS = {"github": "github.com", "gitlab": "gitlab.com", "azure": "dev.azure.com"}


def host_of(url: str | None) -> str:
    """The lower-case host name of ``url``, or "" when it has none."""
    return (urlparse(url).hostname or "").lower() if url else ""


def web_host(api_url: str) -> str:
    """The web host of an SCM API URL (api.github.com serves github.com)."""
    host = host_of(api_url)
    return host.removeprefix("api.") if host == "api.github.com" else host


def allowed_link_hosts(
    *,
    public_url: str,
    integrations: Mapping[str, tuple[bool, str | None]],
    github_app_api_urls: Iterable[str],
    ci_hosts: Iterable[str],
    pipeline_url: str | None,
) -> frozenset[str]:
    """The bot's own host, the organisation's SCM hosts (``integrations``: provider ->
    (enabled, base URL)), the GitHub Apps' hosts, and the pipeline URL's host if it is one of
    the organisation's configured ``ci_hosts``."""
    hosts = {host_of(public_url)}
    for provider, (enabled, base_url) in integrations.items():
        if enabled and provider in DEFAULT_SCM_HOSTS:
            hosts.add(web_host(base_url) if base_url else DEFAULT_SCM_HOSTS[provider])
    hosts.update(web_host(url) for url in github_app_api_urls)
    pipeline_host = host_of(pipeline_url)
    if pipeline_host and pipeline_host in {h.lower() for h in ci_hosts}:
        hosts.add(pipeline_host)
    return frozenset(h for h in hosts if h)
