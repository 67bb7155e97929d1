"""A process that dies mid-transaction, for tests/storage/test_transactions.py.

Usage: python crash_mid_transaction_process.py DATABASE_URL ORG_ID
Creates a cycle and queues its publish job in one transaction, then exits at once without
committing, rolling back or closing anything, as a process killed at that moment would.
"""

from __future__ import annotations

import asyncio
import os
import sys

from bot.cycles import PUBLISH_JOB, create_cycle
from providers.context import CiContext
from storage import queue
from storage.db import create_engine, session_factory

CONTEXT = CiContext(source="github", host="api.github.com", repository="acme/widgets", sha="c" * 40)


async def main(url: str, org_id: int) -> None:
    session = session_factory(create_engine(url))()
    cycle, _ = await create_cycle(session, org_id, CONTEXT)
    await queue.enqueue(session, PUBLISH_JOB, {"cycle_id": cycle.id})
    print("created", flush=True)
    os._exit(3)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
