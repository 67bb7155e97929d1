"""Commit, PR/MR and pipeline web URLs derived from a cycle's CI context."""

from __future__ import annotations

import pytest

from bot.report.web_links import WebLinks, web_links
from providers.context import CiContext

SHA = "abc1234def5678abc1234def5678abc1234def56"


def _ctx(
    source: str, repository: str, pipeline_url: str | None = None, pr: int | None = 7
) -> CiContext:
    return CiContext(
        source=source, repository=repository, sha=SHA, pr=pr, pipeline_url=pipeline_url
    )


@pytest.mark.parametrize(
    ("ctx", "base_url", "expected"),
    [
        (
            _ctx("github", "acme/shop", "https://github.com/acme/shop/actions/runs/9"),
            None,
            WebLinks(
                f"https://github.com/acme/shop/commit/{SHA}",
                "https://github.com/acme/shop/pull/7",
                "PR #7",
                "https://github.com/acme/shop/actions/runs/9",
            ),
        ),
        # GitHub Enterprise Server: the integration's API URL names the host.
        (
            _ctx("github", "acme/shop"),
            "https://ghe.example.com/api/v3",
            WebLinks(
                f"https://ghe.example.com/acme/shop/commit/{SHA}",
                "https://ghe.example.com/acme/shop/pull/7",
                "PR #7",
            ),
        ),
        (
            _ctx("github", "acme/shop"),
            "https://api.github.com",
            WebLinks(
                f"https://github.com/acme/shop/commit/{SHA}",
                "https://github.com/acme/shop/pull/7",
                "PR #7",
            ),
        ),
        # Another CI naming the repository in its URL is not the SCM's host.
        (
            _ctx("github", "acme/shop", "https://buildkite.com/acme/shop/builds/3"),
            None,
            WebLinks(
                f"https://github.com/acme/shop/commit/{SHA}",
                "https://github.com/acme/shop/pull/7",
                "PR #7",
                "https://buildkite.com/acme/shop/builds/3",
            ),
        ),
        # Self-managed GitLab under a sub-path, known only from the pipeline URL; nested groups.
        (
            _ctx("gitlab", "group/sub/proj", "https://example.com/gitlab/group/sub/proj/-/pipelines/42"),
            None,
            WebLinks(
                f"https://example.com/gitlab/group/sub/proj/-/commit/{SHA}",
                "https://example.com/gitlab/group/sub/proj/-/merge_requests/7",
                "MR !7",
                "https://example.com/gitlab/group/sub/proj/-/pipelines/42",
            ),
        ),
        (
            _ctx("gitlab", "group/proj", pr=None),
            "https://gitlab.example.com/api/v4",
            WebLinks(f"https://gitlab.example.com/group/proj/-/commit/{SHA}", None, "MR"),
        ),
        (
            _ctx("gitlab", "group/proj", "https://jenkins.example.com/job/proj/12/"),
            None,
            WebLinks(
                f"https://gitlab.com/group/proj/-/commit/{SHA}",
                "https://gitlab.com/group/proj/-/merge_requests/7",
                "MR !7",
                "https://jenkins.example.com/job/proj/12/",
            ),
        ),
        # Azure DevOps: project/repo under the organisation URL (the integration's) ...
        (
            _ctx("azure", "Shop Project/web"),
            "https://dev.azure.com/acme",
            WebLinks(
                f"https://dev.azure.com/acme/Shop%20Project/_git/web/commit/{SHA}",
                "https://dev.azure.com/acme/Shop%20Project/_git/web/pullrequest/7",
                "PR 7",
            ),
        ),
        # ... or from the build's URL (Azure DevOps Server with a collection) ...
        (
            _ctx("azure", "shop/web", "https://tfs.example.com/tfs/Default/shop/_build/results?buildId=5"),
            None,
            WebLinks(
                f"https://tfs.example.com/tfs/Default/shop/_git/web/commit/{SHA}",
                "https://tfs.example.com/tfs/Default/shop/_git/web/pullrequest/7",
                "PR 7",
                "https://tfs.example.com/tfs/Default/shop/_build/results?buildId=5",
            ),
        ),
        # ... or org/project/repo on dev.azure.com.
        (
            _ctx("azure", "acme/shop/web"),
            None,
            WebLinks(
                f"https://dev.azure.com/acme/shop/_git/web/commit/{SHA}",
                "https://dev.azure.com/acme/shop/_git/web/pullrequest/7",
                "PR 7",
            ),
        ),
        # Not enough to go on: no guessed links.
        (_ctx("azure", "web"), None, WebLinks()),
        (_ctx("jenkins", "acme/shop", "https://ci/x"), None, WebLinks(pipeline="https://ci/x")),
    ],
)  # fmt: skip
def test_web_links(ctx: CiContext, base_url: str | None, expected: WebLinks) -> None:
    assert web_links(ctx, base_url) == expected
