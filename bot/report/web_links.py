"""Web addresses of a cycle's commit and pull/merge request, derived from its CI context. Pure.

The host comes from, in order: the organisation's integration base URL (an API URL for
GitHub, the instance for GitLab, the organisation for Azure DevOps), the pipeline URL when it
is on the same SCM (it names the repository's path), and the public service's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from providers.context import CiContext

_DEFAULT_HOSTS = {
    "github": "https://github.com",
    "gitlab": "https://gitlab.com",
    "azure": "https://dev.azure.com",
}


@dataclass(frozen=True, slots=True)
class WebLinks:
    """Where a person opens the commit, the PR/MR and the pipeline; None when unknown."""

    commit: str | None = None
    change: str | None = None  # the PR (GitHub, Azure DevOps) or MR (GitLab)
    change_label: str = "PR"  # what the platform calls it, with its sigil: "PR #7", "MR !7"
    pipeline: str | None = None


def _path(repository: str) -> str:
    return "/".join(quote(part, safe="") for part in repository.strip("/").split("/") if part)


def _web_base_from_api(source: str, base_url: str) -> str:
    base = base_url.rstrip("/")
    if source == "github":
        # https://api.github.com -> https://github.com; GHES https://ghe/api/v3 -> https://ghe
        parts = urlsplit(base)
        host = "github.com" if parts.netloc == "api.github.com" else parts.netloc
        return f"{parts.scheme}://{host}{parts.path.removesuffix('/api/v3')}"
    if source == "gitlab":
        return base.removesuffix("/api/v4")
    return base


# How each SCM's own pipeline pages continue after the repository (or Azure project) path; a
# CI elsewhere (Jenkins, Buildkite) may name "acme/shop" too, but not like this.
_PIPELINE_PAGES = {"github": "/actions/", "gitlab": "/-/", "azure": "/_build"}


def _base_from_pipeline(source: str, pipeline_url: str | None, anchor: str) -> str | None:
    """What precedes ``/<anchor>`` in the pipeline URL when that is the SCM's own page."""
    if not pipeline_url or not anchor:
        return None
    parts = urlsplit(pipeline_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    at = parts.path.find(f"/{anchor}{_PIPELINE_PAGES[source]}")
    if at < 0:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path[:at]}"


def _azure(ctx: CiContext, base_url: str | None) -> tuple[str | None, str | None]:
    """(project URL, repository name): ``project/repo`` under the organisation URL, or
    ``org/project/repo`` under dev.azure.com."""
    parts = [p for p in ctx.repository.strip("/").split("/") if p]
    org_url: str | None
    if len(parts) == 3 and not base_url:
        org_url = f"{_DEFAULT_HOSTS['azure']}/{quote(parts[0], safe='')}"
        parts = parts[1:]
    elif len(parts) == 2:
        org_url = (
            base_url.rstrip("/")
            if base_url
            else _base_from_pipeline("azure", ctx.pipeline_url, quote(parts[0], safe=""))
        )
    else:
        return None, None
    if org_url is None:
        return None, None
    return f"{org_url}/{quote(parts[0], safe='')}", quote(parts[1], safe="")


def web_links(ctx: CiContext, base_url: str | None = None) -> WebLinks:
    """Commit, PR/MR and pipeline web URLs for ``ctx``; ``base_url`` is the integration's."""
    sha = quote(ctx.sha, safe="")
    pr = ctx.pr
    if ctx.source == "azure":
        project, repo = _azure(ctx, base_url)
        if project is None:
            return WebLinks(pipeline=ctx.pipeline_url)
        root = f"{project}/_git/{repo}"
        return WebLinks(
            commit=f"{root}/commit/{sha}",
            change=f"{root}/pullrequest/{pr}" if pr else None,
            change_label=f"PR {pr}" if pr else "PR",
            pipeline=ctx.pipeline_url,
        )
    default = _DEFAULT_HOSTS.get(ctx.source)
    if default is None:  # a runner's name: no SCM to link to
        return WebLinks(pipeline=ctx.pipeline_url)
    path = _path(ctx.repository)
    if base_url:
        host = _web_base_from_api(ctx.source, base_url)
    else:
        host = _base_from_pipeline(ctx.source, ctx.pipeline_url, path) or default
    repo = f"{host}/{path}"
    if ctx.source == "gitlab":
        return WebLinks(
            commit=f"{repo}/-/commit/{sha}",
            change=f"{repo}/-/merge_requests/{pr}" if pr else None,
            change_label=f"MR !{pr}" if pr else "MR",
            pipeline=ctx.pipeline_url,
        )
    return WebLinks(
        commit=f"{repo}/commit/{sha}",
        change=f"{repo}/pull/{pr}" if pr else None,
        change_label=f"PR #{pr}" if pr else "PR",
        pipeline=ctx.pipeline_url,
    )
