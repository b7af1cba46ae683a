"""The read API's composition root: the pool, the governance outbox's producer and
publisher, the read service, and who a bearer token is."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
import uvicorn

from projections.queries import reads as q
from services.common.correlation import CorrelationMiddleware
from services.common.db import BoundedPool, create_pool, wait_and_migrate
from services.common.kafka import TopicGuard, ensure_topics, make_producer
from services.common.outbox import OutboxPublisher
from services.common.serde.avro import governance_codec
from services.common.serde.governance_event import decode_governance_event
from services.common.serde.headers import Headers, cloudevent_headers
from services.common.settings import Settings
from services.ingest.auth import TOKEN_PREFIX as AGENCY_TOKEN_PREFIX
from services.ingest.auth import authenticate
from services.reads import accounts
from services.reads.domain.audit import Caller
from services.reads.lookup import ReadRefused
from services.reads.service import PersonReads, person_reads

log = structlog.get_logger(__name__)


@dataclass
class ReadSide:
    settings: Settings
    pool: BoundedPool
    reads: PersonReads

    async def caller(self, token: str) -> Caller | None:
        """A practitioner's token, or an agency's credential (which reads as its agency)."""
        if token.startswith(accounts.TOKEN_PREFIX):
            async with self.pool.acquire() as conn:
                found = await accounts.practitioner_for(conn, token)
            return None if found is None else Caller(found.reader, "practitioner")
        if token.startswith(AGENCY_TOKEN_PREFIX):
            principal = await authenticate(self.pool, token)
            return (None if principal is None
                    else Caller(accounts.agency_reader(principal.agency_id), "agency_system"))
        return None

    async def practitioner(self, username: str | None, who: Caller) -> accounts.Practitioner:
        """The practitioner a request names (by username), or the caller themselves."""
        if username is None:
            if who.kind != "practitioner" or who.reader.practitioner is None:
                raise ReadRefused("invalid", "name the practitioner (you are not one)")
            async with self.pool.acquire() as conn:
                found = await accounts.practitioner_by_id(conn, who.reader.practitioner)
        else:
            async with self.pool.acquire() as conn:
                found = await accounts.find_practitioner(conn, username)
        if found is None:
            raise ReadRefused("invalid", "no such practitioner")
        return found


async def _drain(reads: PersonReads, every: float) -> None:
    """Publish what a request left in the outbox (the broker was down, the process died)."""
    while True:
        await asyncio.sleep(every)
        await reads.publish()


@asynccontextmanager
async def read_side_running(settings: Settings, *, migrate: bool = True
                            ) -> AsyncIterator[ReadSide]:
    if migrate:
        await wait_and_migrate(settings)
        await ensure_topics(settings)
    statement_timeout = settings.api_statement_timeout_ms
    raw = await create_pool(
        settings, min_size=2, max_size=10,
        server_settings={"statement_timeout": str(statement_timeout),
                         "lock_timeout": str(settings.api_lock_timeout_ms)},
        command_timeout=statement_timeout / 1000 + 1.0)
    pool = BoundedPool(raw, settings.api_pool_acquire_timeout_seconds)
    producer = make_producer(settings)
    drain: asyncio.Task[None] | None = None
    try:
        await producer.start()
        publisher = OutboxPublisher(raw, producer, settings.topics.governance,
                                    q.PENDING_GOVERNANCE_OUTBOX, q.CLEAR_GOVERNANCE_OUTBOX,
                                    TopicGuard(producer), headers=governance_headers)
        reads = person_reads(raw, settings, publisher)
        drain = asyncio.create_task(_drain(reads, 5.0))
        yield ReadSide(settings, pool, reads)
    finally:
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
        await producer.stop()
        await pool.close()


def server(settings: Settings, *, migrate: bool = True, **overrides: object) -> uvicorn.Server:
    from services.reads.entrypoints.http import create_app

    options: dict[str, object] = {
        "host": settings.reads_host, "port": settings.reads_port, "log_config": None,
        "access_log": False, "proxy_headers": False, "server_header": False,
        "lifespan": "on"}
    options.update(overrides)
    app = CorrelationMiddleware(create_app(settings, migrate=migrate))  # ids on log lines
    return uvicorn.Server(uvicorn.Config(app, **options))  # type: ignore[arg-type]


async def serve(settings: Settings) -> None:
    """Run the read API until SIGINT/SIGTERM (what `joinedup read-api` calls).

    The database is migrated and the topics made first, so a server that cannot reach them
    says so in one line (the command's), not from inside the web server."""
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    await server(settings, migrate=False).serve()


def governance_headers(body: bytes) -> Headers:
    """The CloudEvents Kafka binding headers of a governance event (no personal data)."""
    event = decode_governance_event(body)
    return cloudevent_headers(governance_codec(), event.event_id, "/joinedup/governance",
                              event.event_type, event.recorded_at)
