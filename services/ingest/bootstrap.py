"""The gateway's composition root: the pool, the producer and the HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from services.common.correlation import CorrelationMiddleware
from services.common.db import BoundedPool, create_pool, keep_session, wait_and_migrate
from services.common.kafka import TopicGuard, ensure_topics
from services.common.settings import Settings
from services.ingest.adapters.log_check import LogCheck
from services.ingest.adapters.publisher import EventPublisher, gateway_producer
from services.ingest.auth import CredentialCache
from services.ingest.handlers import Gateway


@asynccontextmanager
async def gateway_running(settings: Settings, *, migrate: bool = True
                          ) -> AsyncIterator[Gateway]:
    """A connected gateway for the lifetime of the block (the HTTP app's lifespan)."""
    if migrate:  # both are idempotent; `joinedup api` may start before anything else
        await wait_and_migrate(settings)
        await ensure_topics(settings)
    # Every use of the pool is one autocommit statement that leaves no session state (no SET,
    # no advisory lock, no cursor), so connections go back without asyncpg's reset round trip.
    # Server-side timeouts end a statement stuck on a lock or a slow plan (the server cancels
    # it, so nothing waits on); command_timeout is the client's backstop for a server that
    # does not answer at all; BoundedPool bounds the wait for a connection.
    statement_timeout = settings.api_statement_timeout_ms
    pool = BoundedPool(await create_pool(
        settings, min_size=2, max_size=10, reset=keep_session,
        server_settings={"statement_timeout": str(statement_timeout),
                         "lock_timeout": str(settings.api_lock_timeout_ms)},
        command_timeout=statement_timeout / 1000 + 1.0), settings.api_pool_acquire_timeout_seconds)
    producer = gateway_producer(settings)
    timeout = settings.api_produce_timeout_seconds
    log_check = (LogCheck(settings, settings.api_confirm_timeout_seconds)
                 if settings.api_confirm_writes else None)
    try:
        await producer.start()
        if log_check is not None:
            await log_check.start()
        guard = TopicGuard(producer) if settings.api_confirm_writes else None
        publisher = EventPublisher(producer, settings.topics, settings.subject_keys(),
                                   timeout, guard)
        yield Gateway(pool, publisher,
                      CredentialCache(pool, settings.api_credential_cache_seconds), log_check,
                      # By then the claimant has recorded, released or died: its produce
                      # gives up after `timeout` (see gateway_producer).
                      stale_after=2 * timeout + 5, claim_wait=settings.api_claim_wait_seconds,
                      key_encryption_key=settings.key_encryption_key())
    finally:
        if log_check is not None:
            await log_check.stop()
        await producer.stop()
        await pool.close()


def server(settings: Settings, *, migrate: bool = True, **overrides: object) -> uvicorn.Server:
    """A uvicorn server for the gateway app on settings.api_host:api_port."""
    from services.ingest.entrypoints.http import create_app
    from services.ingest.entrypoints.protocol import bounded_head

    options: dict[str, object] = {
        "host": settings.api_host, "port": settings.api_port, "log_config": None,
        "access_log": False,  # request lines carry no personal data, but the metrics cover it
        "proxy_headers": False, "server_header": False, "lifespan": "on",
        # uvicorn bounds a request head only with h11; httptools is given a bounded protocol.
        "http": bounded_head(settings.api_max_header_bytes),
        "h11_max_incomplete_event_size": settings.api_max_header_bytes,
    }
    options.update(overrides)
    app = CorrelationMiddleware(create_app(settings, migrate=migrate))  # ids on log lines
    return uvicorn.Server(uvicorn.Config(app, **options))  # type: ignore[arg-type]


async def serve(settings: Settings) -> None:
    """Run the gateway until SIGINT/SIGTERM (what `joinedup api` calls).

    The database is migrated and the topics made first, so a server that cannot reach them
    says so in one line (the command's), not from inside the web server."""
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    await server(settings, migrate=False).serve()
