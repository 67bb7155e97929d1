"""The core's event model: what a verified webhook asks the bot to do, whatever the SCM.

Defined beside the provider protocol (``providers/events.py``) because each SCM package's
inbound half produces it; the handlers in ``bot/handlers/`` act on it.
"""

from providers.events import (
    ChangeClosed,
    ChangeOpened,
    ChangeUpdated,
    Event,
    Ignore,
    InstallationChanged,
    Origin,
    PipelineFinished,
    RerunRequested,
    RunApproved,
    RunRequested,
)

__all__ = [
    "ChangeClosed",
    "ChangeOpened",
    "ChangeUpdated",
    "Event",
    "Ignore",
    "InstallationChanged",
    "Origin",
    "PipelineFinished",
    "RerunRequested",
    "RunApproved",
    "RunRequested",
]
