"""PostgreSQL connections: one pool per process, every connection on the configured schema."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg

from projections.migrate import migrate
from services.common.settings import Settings

#: "The database is unavailable or too slow right now; the same call may succeed later."
#: Callers answer "retry" (the gateway: 503 with Retry-After) instead of failing. Anything
#: else the driver raises (a constraint violation, bad SQL) is a bug or bad data and must not
#: pass for an outage. Every class is one seen, or documented, while a server is going away,
#: failing over, overloaded, or past a timeout we set.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    # The server cannot be reached: connection refused or reset, TLS failures (ssl.SSLError).
    OSError,
    # A client-side deadline: connect, pool acquisition, command_timeout.
    TimeoutError,
    # The connection or pool is closed ("connection is closed", "pool is closing"). Its
    # subclass DataError (an argument the driver cannot encode) is caught too: callers pass
    # only values they checked or made (UUIDs, digests, ids from a credential).
    asyncpg.InterfaceError,
    # The wire protocol broke mid-statement because the server went away ("cannot switch to
    # state ...; another operation is in progress"): what escaped as a 500 when PostgreSQL
    # shut down under load. Also ProtocolError, OutdatedSchemaCacheError (asyncpg asks for a
    # retry) and TargetServerAttributeNotMatched (a failover in progress).
    asyncpg.InternalClientError,
    # SQLSTATE class 08: connection failure, closed mid-query, rejected.
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,       # 57P03: starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,          # 57P01: fast shutdown or pg_terminate_backend()
    asyncpg.CrashShutdownError,          # 57P02: another backend crashed; the server restarts
    asyncpg.QueryCanceledError,          # 57014: statement_timeout (or pg_cancel_backend())
    asyncpg.LockNotAvailableError,       # 55P03: lock_timeout
    # SQLSTATE class 53: too many connections, out of memory, disk full.
    asyncpg.InsufficientResourcesError,
    asyncpg.ReadOnlySQLTransactionError,  # 25006: a standby, or a primary being demoted
    asyncpg.SerializationError,          # 40001: the transaction lost a race; run it again
    asyncpg.DeadlockDetectedError,       # 40P01: the server chose this transaction to abort
)


async def create_pool(settings: Settings, *, min_size: int = 1, max_size: int = 10,
                      init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                      reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                      server_settings: Mapping[str, str] | None = None,
                      command_timeout: float | None = None,
                      ) -> asyncpg.Pool:
    """`reset` replaces asyncpg's reset on release (a round trip running RESET ALL and more);
    a pool whose users leave no session state behind can pass `keep_session`.
    `server_settings` are added to every connection's session (e.g. statement_timeout);
    `command_timeout` is asyncpg's client-side deadline for each statement."""
    database_url, _ = settings.require_servers()
    pool = await asyncpg.create_pool(
        database_url, min_size=min_size, max_size=max_size, init=init, reset=reset,
        command_timeout=command_timeout,
        server_settings={"search_path": settings.db_schema, "application_name": "joinedup",
                         **(server_settings or {})})
    assert pool is not None
    return pool


class BoundedPool:
    """A pool whose every statement waits at most `acquire_timeout` seconds for a connection.

    asyncpg's ``Pool.fetch`` and friends acquire without a timeout: with every connection
    held (say, by statements queued behind a locked table) a request would wait for as long
    as that lasts. Here it gets TimeoutError, one of DATABASE_UNAVAILABLE, in bounded time.
    """

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout

    def acquire(self) -> Any:  # asyncpg's PoolAcquireContext: `async with pool.acquire()`
        return self.pool.acquire(timeout=self.acquire_timeout)

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return list(await conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        async with self.acquire() as conn:
            return str(await conn.execute(query, *args))

    async def close(self) -> None:
        await self.pool.close()


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

