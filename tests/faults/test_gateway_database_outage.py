"""PostgreSQL shuts down under load: every answer is 503 (retry) or the event is on the log.

This test runs its own embedded PostgreSQL (the session one is shared) and stops it while
several clients are posting. Whatever the driver raises while the server goes away (admin
shutdown, a connection closed mid-query, "the database system is shutting down", refused
connections), the gateway answers 503 with Retry-After, or 202 when the broker had already
acknowledged the event; never another 5xx, never a 202 for an event that is not on the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.db import wait_and_migrate
from services.common.kafka import ensure_topics
from services.common.serde.agency_json import event_to_json
from services.ingest.credentials import create_agency
from services.stack.postgres import EmbeddedPostgres
from tests.conftest import Servers, make_settings
from tests.factories import referral
from tests.integration.ingest.conftest import AGENCY, copies, gateway_thread, topic_events

pytestmark = pytest.mark.faults

CLIENTS = 8


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "pg" / "data", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _post_until(http: httpx.AsyncClient, stop: asyncio.Event, warm: asyncio.Event,
                      answers: list[tuple[str, int, str | None]]) -> None:
    while not stop.is_set():
        event = referral("made")
        response = await http.post("/v1/events", json=event_to_json(event))
        answers.append((event.event_id, response.status_code,
                        response.headers.get("retry-after")))
        if sum(1 for a in answers if a[1] == 202) >= 4 * CLIENTS:
            warm.set()  # every client is posting at full speed


async def test_database_shutdown_answers_503_or_202_never_500(
        servers: Servers, postgres: EmbeddedPostgres) -> None:
    settings = make_settings(servers, database_url=postgres.url,
                             api_credential_cache_seconds=0.0)  # every post reads the database
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    token = await create_agency(settings, AGENCY, "HMP Leeds", "PRISON")
    answers: list[tuple[str, int, str | None]] = []
    stop, warm = asyncio.Event(), asyncio.Event()
    with gateway_thread(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30, headers={
                "Authorization": f"Bearer {token}"}) as http:
            posting = [asyncio.create_task(_post_until(http, stop, warm, answers))
                       for _ in range(CLIENTS)]
            await asyncio.wait_for(warm.wait(), 30)
            await asyncio.to_thread(postgres.stop)
            await asyncio.sleep(1.0)  # posts keep arriving at a gateway with no database
            stop.set()
            await asyncio.gather(*posting)
            ready = await http.get("/readyz")
    statuses = {status for _, status, _ in answers}
    assert statuses <= {202, 503}, sorted(statuses)
    assert 503 in statuses  # the outage was seen
    assert all(retry and retry.isdigit() for _, status, retry in answers if status == 503)
    assert (ready.status_code, ready.json()["database"]) == (503, "unavailable")
    found = await topic_events(settings)
    for event_id, status, _ in answers:
        # 202: on the log once. 503: "nothing recorded", so not on the log at all.
        assert copies(found, event_id) == (1 if status == 202 else 0), status
    accepted = sum(1 for _, status, _ in answers if status == 202)
    print(f"\n[figures] gateway, PostgreSQL stopped under {CLIENTS} clients: {len(answers)} "
          f"posts, {accepted} answered 202 (each on the log once), {len(answers) - accepted} "
          f"answered 503 (none on the log), 0 answered 500, 0 falsely acknowledged")
