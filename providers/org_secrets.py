"""Per-organisation webhook secrets for the SCMs whose webhook URL names the organisation
(``/webhooks/<scm>/{org}``): looked up by slug, decrypted, and cached for a short while so
that intake reads no database row per delivery."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.orgs import find_org
from storage.secret_fields import integration_owner
from storage.vault import Vault

CACHE_SECONDS = 30.0


class OrgWebhookSecrets:
    """``get(slug)`` -> (organisation id, decrypted webhook secret), either None when unknown.

    A missing organisation or secret is cached too, so a flood of requests for an unknown
    slug costs one query per ``ttl``; a secret set with the CLI is used within ``ttl``.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vault: Vault,
        provider: str,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.vault = vault
        self.provider = provider
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, int | None, str | None]] = {}

    async def get(self, slug: str) -> tuple[int | None, str | None]:
        now = self.clock()
        cached = self._cache.get(slug)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        org_id, secret = await self._load(slug)
        if len(self._cache) > 10_000:  # slugs are attacker-chosen: bound the memory
            self._cache.clear()
        self._cache[slug] = (now + self.ttl, org_id, secret)
        return org_id, secret

    async def _load(self, slug: str) -> tuple[int | None, str | None]:
        async with self.sessions() as session:
            org = await find_org(session, slug)
            if org is None:
                return None, None
            integration = org.integrations.get(self.provider)
            if integration is None or not integration.enabled or not integration.webhook_secret_enc:
                return org.id, None
            secret = self.vault.decrypt(
                integration.webhook_secret_enc,
                integration_owner(org.id, self.provider, "webhook_secret"),
            )
            return org.id, secret.reveal()
