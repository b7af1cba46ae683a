"""A locked table answers 503 quickly, for every client, and the same posts succeed afterwards.

An operator's ``LOCK TABLE`` (or a long migration) holds the table; without statement and
lock timeouts every request would wait for the whole lock, holding a pooled connection, and
requests beyond the pool would queue behind them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.common.serde.agency_json import event_to_json
from services.common.settings import Settings
from services.ingest.credentials import create_agency
from tests.factories import referral
from tests.integration.ingest.conftest import AGENCY, Gateway, copies, gateway_thread, topic_events

pytestmark = pytest.mark.faults

CLIENTS = 24  # more than the gateway's ten pooled connections
# lock_timeout (1 s) after waiting up to the pool's acquire timeout (2 s), plus slack.
BOUND_SECONDS = 5.0


@pytest.fixture
async def gateway(migrated: Settings) -> AsyncIterator[Gateway]:
    # No credential cache: every post reads agency_credential.
    settings = migrated.model_copy(update={"api_credential_cache_seconds": 0.0})
    token = await create_agency(settings, AGENCY, "HMP Leeds", "PRISON")
    with gateway_thread(settings) as url:
        yield Gateway(url, settings, token)


async def _timed_post(http: httpx.AsyncClient, body: dict) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await http.post("/v1/events", json=body)
    return response, time.monotonic() - started


@pytest.mark.parametrize("table", ["ingest_receipt", "agency_credential"])
async def test_locked_table_is_a_quick_503_then_the_posts_succeed(
        gateway: Gateway, table: str) -> None:
    bodies = [event_to_json(referral("made")) for _ in range(CLIENTS)]
    lock = await asyncpg.connect(gateway.settings.database_url, server_settings={
        "search_path": gateway.settings.db_schema})
    try:
        async with gateway.client() as http:
            transaction = lock.transaction()
            await transaction.start()
            await lock.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            try:
                answers = await asyncio.wait_for(asyncio.gather(
                    *(_timed_post(http, body) for body in bodies)), 4 * BOUND_SECONDS)
            finally:
                await transaction.rollback()
            retried = await asyncio.gather(*(http.post("/v1/events", json=body)
                                             for body in bodies))
    finally:
        await lock.close()
    slowest = max(seconds for _, seconds in answers)
    print(f"\n[figures] gateway, {table} locked: {CLIENTS} concurrent posts answered 503 in "
          f"at most {slowest:.2f}s; after release all {CLIENTS} written once")
    for response, seconds in answers:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"].isdigit()
        assert response.json()["problems"][0]["code"] == "unavailable"
        assert seconds < BOUND_SECONDS
    assert [r.status_code for r in retried] == [202] * CLIENTS
    found = await topic_events(gateway.settings)
    assert all(copies(found, body["event_id"]) == 1 for body in bodies)
