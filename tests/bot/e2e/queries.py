"""What the bot stored, read in short sessions of their own (for the end-to-end tests)."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.runtime import Runtime
from storage.models import Base, Job, TestCycle


async def cycles(runtime: Runtime) -> list[TestCycle]:
    """Every test cycle, oldest first."""
    async with runtime.sessions() as session:
        query = select(TestCycle).order_by(TestCycle.created_at)
        return list((await session.execute(query)).scalars())


async def count(runtime: Runtime, model: type[Base]) -> int:
    """How many rows ``model`` has."""
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def jobs_done(runtime: Runtime) -> bool:
    """True when every job there is has finished (none queued, running or dead)."""
    async with runtime.sessions() as session:
        return set((await session.execute(select(Job.status))).scalars()) == {"done"}


async def count_jobs(runtime: Runtime, kind: str) -> int:
    """How many jobs of ``kind`` were ever queued (e.g. ``analyse_cycle``)."""
    async with runtime.sessions() as session:
        query = select(func.count()).select_from(Job).where(Job.kind == kind)
        return int((await session.execute(query)).scalar_one())
