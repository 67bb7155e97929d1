"""Turn git remote URLs and PR links into `owner/name`, an SCM name and a PR number."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# scp-like git remotes: git@host:owner/name.git (no scheme, a colon before the path).
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")


def _host_and_path(url: str) -> tuple[str, str] | None:
    url = url.strip()
    if not url:
        return None
    if "://" in url:
        parts = urlsplit(url)
        # hostname drops any user:password@ the remote carries (Jenkins often has one).
        return (parts.hostname or "").lower(), parts.path
    match = _SCP_LIKE.match(url)
    if match is None:
        return None
    return match["host"].lower(), match["path"]


def scm_from_host(host: str) -> str | None:
    """The SCM a host name belongs to (github, gitlab, azure), or None when it cannot be told."""
    host = host.lower()
    if host.endswith(("dev.azure.com", ".visualstudio.com")):
        return "azure"
    if host == "github.com" or host.startswith("github.") or ".github." in host:
        return "github"
    if host == "gitlab.com" or host.startswith("gitlab.") or ".gitlab." in host:
        return "gitlab"
    return None


def scm_from_url(url: str | None) -> str | None:
    """The SCM a git remote or web URL points at, inferred from its host."""
    if not url:
        return None
    found = _host_and_path(url)
    return scm_from_host(found[0]) if found else None


def repository_from_url(url: str | None) -> str | None:
    """`owner/name` (GitLab: the full group path; Azure Repos: `project/name`) from a git URL."""
    if not url:
        return None
    found = _host_and_path(url)
    if found is None:
        return None
    host, path = found
    segments = [s for s in path.split("/") if s]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][: -len(".git")]
    if scm_from_host(host) == "azure":
        segments = _azure_segments(host, segments)
    elif segments and segments[0] == "scm":
        # Bitbucket Server / Data Center serves clones under /scm/.
        segments = segments[1:]
    segments = [s for s in segments if s]
    if len(segments) < 2:
        return None
    return "/".join(segments)


def _azure_segments(host: str, segments: list[str]) -> list[str]:
    # https://dev.azure.com/{org}/{project}/_git/{repo}
    # https://{org}.visualstudio.com/{project}/_git/{repo}
    # git@ssh.dev.azure.com:v3/{org}/{project}/{repo}
    if "_git" in segments:
        at = segments.index("_git")
        project = segments[at - 1] if at >= 1 else ""
        return [project, *segments[at + 1 : at + 2]]
    if segments and segments[0] == "v3":
        return segments[2:4]
    if host.endswith("dev.azure.com"):
        return segments[1:3]
    return segments[:2]


def pr_number_from_url(url: str | None) -> int | None:
    """The number at the end of a PR/MR link such as `https://github.com/o/r/pull/12`."""
    if not url:
        return None
    match = re.search(r"/(?:pull|pulls|merge_requests|pull-requests|pullrequest)/(\d+)/?$", url)
    if match is None:
        match = re.search(r"/(\d+)/?$", url)
    return int(match.group(1)) if match else None
