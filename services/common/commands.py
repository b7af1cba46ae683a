"""Running a `joinedup` command against the database: a pool for the work, closed after,
and a refusal (an exception the command names) as one clear line and exit 2, never a
traceback."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import asyncpg

from services.common.db import create_pool
from services.common.settings import Settings

Work = Callable[[asyncpg.Pool], Awaitable[int]]


def run_on_database(name: str, work: Work, settings: Settings,
                    refusals: tuple[type[Exception], ...]) -> int:
    async def go() -> int:
        pool = await create_pool(settings, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()
    try:
        return asyncio.run(go())
    except refusals as exc:
        sys.stderr.write(f"joinedup {name}: {exc}\n")
        return 2
