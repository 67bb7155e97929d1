"""Resolve the provider that publishes a cycle, from its ``source`` and its organisation.

Each SCM package builds its own (providers/registry.py): GitHub from the App installation
that covers the repository, else the organisation's token. Anything unconfigured, and any
source that publishes nowhere, gets a NullProvider that says why.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from providers.base import CiProvider
from providers.context import CiContext
from providers.registry import package_for
from providers.shared import NullProvider, ProviderShared
from storage.models import Organization
from storage.vault import Vault

__all__ = ["NullProvider", "ProviderShared", "resolve_provider"]


async def resolve_provider(
    session: AsyncSession,
    vault: Vault,
    org: Organization,
    ctx: CiContext,
    shared: ProviderShared,
) -> CiProvider | NullProvider:
    """The provider for this cycle's context, or a NullProvider naming what is missing."""
    if not ctx.publishes:
        return NullProvider(f"source {ctx.source!r} publishes nowhere")
    package = package_for(ctx.source)
    if package is None:
        return NullProvider(f"publishing to {ctx.source} is not available in this version")
    return await package.build_provider(session, vault, org, ctx, shared)
