"""What a process holds for its lifetime: settings, the engine, sessions and the vault."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from config.settings import Settings
from storage.db import create_engine, session_factory
from storage.keyring_source import KeySource, load_keys
from storage.vault import Vault

log = logging.getLogger("aac.runtime")


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    vault: Vault
    keys: KeySource

    async def close(self) -> None:
        await self.engine.dispose()


def build_runtime(settings: Settings) -> Runtime:
    """Open the engine and keyring for these settings (no connection is made yet)."""
    keys = load_keys(settings)
    if keys.created:
        log.warning(
            "created a new secret key file; back it up, stored tokens cannot be read without it",
            extra={"key_file": str(keys.key_file)},
        )
    engine = create_engine(settings.database_url)
    return Runtime(settings, engine, session_factory(engine), Vault(keys.keyring), keys)


def service_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop of the long-running processes: uvloop (uvicorn[standard] brings it)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with uvicorn[standard]
        return None
    return uvloop.new_event_loop
