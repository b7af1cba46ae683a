"""The broker goes away: 503 with Retry-After and nothing claimed; it comes back: one copy.

This test runs its own Tansu broker (the session one is shared), kills it, and starts a new
one on the same port. Tansu keeps topics in memory, so the topic is created again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.common.db import wait_and_migrate
from services.common.kafka import ensure_topics
from services.common.serde.agency_json import event_to_json
from services.ingest.client import JoinedupClient
from services.ingest.credentials import create_agency
from services.stack.broker import EmbeddedBroker
from tests.conftest import Servers, make_settings
from tests.factories import contact, referral
from tests.integration.ingest.conftest import Gateway, copies, gateway_thread, topic_events

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def _receipts(database_url: str, schema: str) -> int:
    """Receipts of accepted events; failing if any claim was left pending (not given back)."""
    conn = await asyncpg.connect(database_url)
    try:
        states = dict(await conn.fetch(
            f'SELECT state, count(*) FROM "{schema}".ingest_receipt GROUP BY state'))
    finally:
        await conn.close()
    assert set(states) <= {"accepted"}, states
    return states.get("accepted", 0)


async def _until_ready(http: httpx.AsyncClient, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await http.get("/readyz")).status_code != 200:
        assert asyncio.get_running_loop().time() < deadline, "the gateway never became ready"
        await asyncio.sleep(0.2)


async def _until_not_written(http: httpx.AsyncClient, count: int) -> None:
    line = 'joinedup_ingest_events_total{agency="hmp-leeds",outcome="not_written"} '
    for _ in range(300):
        metrics = (await http.get("/metrics")).text
        if f"{line}{count}.0" in metrics:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the client's first attempt never came back 503")


async def test_broker_down_is_503_then_a_retry_writes_once(
        servers: Servers, broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = make_settings(servers, kafka_bootstrap=broker.bootstrap,
                             api_produce_timeout_seconds=2.0)
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    token = await create_agency(settings, "hmp-leeds", "HMP Leeds", "PRISON")
    before, during, client_event = referral("made"), referral("declined"), contact("follow_up")
    with gateway_thread(settings) as url:
        gateway = Gateway(url, settings, token)
        async with gateway.client() as http:
            assert (await http.post("/v1/events", json=event_to_json(before))).status_code == 202

            broker.kill()
            down = await http.post("/v1/events", json=event_to_json(during))
            assert down.status_code == 503
            assert down.headers["retry-after"].isdigit()
            assert down.json()["problems"][0]["code"] == "unavailable"
            assert (await http.get("/readyz")).json()["broker"] == "unavailable"
            assert await _receipts(settings.database_url, settings.db_schema) == 1  # `before`
            batch = await http.post("/v1/events:batch", json={"events": [
                event_to_json(during)]})
            assert batch.status_code == 503
            assert batch.json()["items"][0]["status"] == "not_written"
            assert batch.json()["all_written"] is False

            # The client retries, honouring Retry-After, while the broker is replaced. The
            # replacement gets its topic before any retry reaches it: a produce that
            # auto-creates the topic first, then an explicit create, trips Tansu's memory store.
            async with JoinedupClient(url, token, backoff=0.2, max_backoff=5.0,
                                      attempts=30) as client:
                publishing = asyncio.create_task(client.publish(client_event))
                await _until_not_written(http, 3)  # single, batch item, the client's first try
                replacement = EmbeddedBroker(tmp_path / "tansu-2.log", port=broker.port)
                replacement.start()
                try:
                    # memory storage: the restart lost them (the agency topic too)
                    await ensure_topics(settings, agencies=["hmp-leeds"])
                    await _until_ready(http)
                    retried = await http.post("/v1/events", json=event_to_json(during))
                    assert retried.status_code == 202, retried.text
                    again = await http.post("/v1/events", json=event_to_json(during))
                    assert again.status_code == 200
                    published = await asyncio.wait_for(publishing, 60)
                    assert published.status == "accepted"
                    found = await topic_events(settings)
                finally:
                    replacement.stop()
    assert copies(found, during.event_id) == 1
    assert copies(found, client_event.event_id) == 1
    assert await _receipts(settings.database_url, settings.db_schema) == 3
