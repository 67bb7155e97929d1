"""What every event handler receives: the runtime and the shared provider state."""

from __future__ import annotations

from dataclasses import dataclass

from bot.runtime import Runtime
from providers.factory import ProviderShared


@dataclass(slots=True)
class HandlerContext:
    runtime: Runtime
    shared: ProviderShared
