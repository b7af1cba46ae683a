"""A real gateway (uvicorn on a free loopback port, in its own thread) on the real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.admission.transit import TransitKeys
from services.common.db import create_pool
from services.common.events import AgencyEvent
from services.common.kafka import stop_consumer
from services.common.serde.agency_event import decode_event
from services.common.settings import Settings
from services.ingest.bootstrap import server
from services.ingest.credentials import create_agency
from services.stack.ports import free_port
from tests.factories import SOURCES
from tests.servers import serving

AGENCY = SOURCES["PRISON"].agency  # tests.factories events come from this agency by default


@dataclass
class Gateway:
    url: str
    settings: Settings
    token: str

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def gateway_thread(settings: Settings, port: int | None = None) -> Iterator[str]:
    """Run the gateway in a thread with its own event loop, as a deployed one would run."""
    port = port or free_port()
    with serving(server(settings, migrate=False, port=port, log_level="warning"), "gateway",
                 port) as url:
        yield url


@pytest.fixture
async def gateway(migrated: Settings) -> AsyncIterator[Gateway]:
    # A short credential cache, so revocation tests wait half a second, not ten.
    settings = migrated.model_copy(update={"api_credential_cache_seconds": 0.5})
    token = await create_agency(settings, AGENCY, "HMP Leeds", "PRISON")
    await create_agency(settings, SOURCES["HOUSING"].agency, "Leeds housing", "HOUSING")
    with gateway_thread(settings) as url:
        yield Gateway(url, settings, token)


async def topic_events(settings: Settings, bootstrap: str | None = None, idle_ms: int = 1500,
                       agencies: Sequence[str] = (AGENCY, SOURCES["HOUSING"].agency)
                       ) -> list[tuple[bytes | None, AgencyEvent]]:
    """Everything on the agencies' topics (where the gateway writes): read until no message
    arrives for `idle_ms`."""
    consumer = AIOKafkaConsumer(
        *(settings.topics.agency(a) for a in agencies),
        bootstrap_servers=bootstrap or settings.kafka_bootstrap,
        group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[bytes | None, AgencyEvent]] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms)
            if not batch:
                return found
            for records in batch.values():
                found.extend((r.key, decode_event(r.value)) for r in records if r.value)
    finally:
        await stop_consumer(consumer)


def copies(found: Sequence[tuple[bytes | None, AgencyEvent]], event_id: str) -> int:
    return sum(1 for _, event in found if event.event_id == event_id)


async def opened(settings: Settings, events: Sequence[AgencyEvent]) -> list[AgencyEvent]:
    """Events read off an agency topic, opened with the transit keys their receipts hold
    (as admission opens them)."""
    pool = await create_pool(settings, max_size=1)
    try:
        found = await TransitKeys(pool, settings.key_encryption_key()).open(events)
    finally:
        await pool.close()
    out = []
    for event in events:
        outcome = found.get((event.source.agency, event.event_id), event)
        assert isinstance(outcome, AgencyEvent), outcome
        out.append(outcome)
    return out
