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


#: The database is down, restarting or too slow right now: retry later, never park or drop.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError,
    asyncpg.InterfaceError,          # the connection is closed or broken under us
    asyncpg.InternalClientError,     # protocol state lost mid-message (server shut down)
    asyncpg.PostgresConnectionError,                 # SQLSTATE class 08
    asyncpg.CannotConnectNowError,                   # 57P03: starting up or shutting down
    asyncpg.exceptions.AdminShutdownError,           # 57P01
    asyncpg.exceptions.CrashShutdownError,           # 57P02
    asyncpg.TooManyConnectionsError,                 # 53300
    asyncpg.exceptions.QueryCanceledError,           # 57014: statement_timeout
    asyncpg.exceptions.LockNotAvailableError,        # 55P03: lock_timeout
)
