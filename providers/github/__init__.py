"""GitHub: verified webhooks, the gidgethub provider, App auth, workflow-run artifacts, its CLI."""

from providers.github.provider import GithubProvider, GithubShared

__all__ = ["GithubProvider", "GithubShared"]
