"""PostgreSQL connections: one pool per process, every connection on the configured schema."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from projections.migrate import migrate
from services.common.settings import Settings


async def create_pool(settings: Settings, *, min_size: int = 1, max_size: int = 10,
                      init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                      reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                      ) -> asyncpg.Pool:
    """`reset` replaces asyncpg's reset on release (a round trip running RESET ALL and more);
    a pool whose users leave no session state behind can pass `keep_session`."""
    database_url, _ = settings.require_servers()
    pool = await asyncpg.create_pool(
        database_url, min_size=min_size, max_size=max_size, init=init, reset=reset,
        server_settings={"search_path": settings.db_schema, "application_name": "joinedup"})
    assert pool is not None
    return pool


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool reset that sends nothing (asyncpg still rolls back an open transaction)."""


async def wait_and_migrate(settings: Settings, timeout: float = 60.0) -> list[str]:
    """Wait for the database to accept connections, then apply pending migrations."""
    database_url, _ = settings.require_servers()
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(database_url)
            break
        except (OSError, asyncpg.CannotConnectNowError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
    try:
        return await migrate(conn, settings.db_schema)
    finally:
        await conn.close()
