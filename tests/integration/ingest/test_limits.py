"""Request heads over the limit get 431 (or a closed connection, never a hang); requests over
the in-flight limit get an immediate 503; probes are never shed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from services.common.serde.agency_json import event_to_json
from services.common.settings import Settings
from services.ingest.credentials import create_agency
from tests.factories import referral
from tests.integration.ingest.conftest import AGENCY, Gateway, copies, gateway_thread, topic_events

pytestmark = pytest.mark.integration

MAX_HEAD = 16 * 1024  # the default api_max_header_bytes


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def test_header_size_and_count_over_the_limit_are_431(gateway: Gateway) -> None:
    async with gateway.client() as http:
        body = event_to_json(referral("made"))
        big = await http.post("/v1/events", json=body, headers={"x-big": "a" * (MAX_HEAD + 1)})
        many = await http.post("/v1/events", json=body,
                               headers={f"x-h{i}": "1" for i in range(120)})
        # A big body is not a big head.
        batch = await http.post("/v1/events:batch", json={"events": [
            event_to_json(referral("made", reason="x" * 150)) for _ in range(400)]})
        ok = await http.post("/v1/events", json=body)
    for response, reason in ((big, f"the request line and headers are over {MAX_HEAD} bytes"),
                             (many, "has more than 100 header fields")):
        assert response.status_code == 431, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["problems"] == [
            {"field": "headers", "reason": reason, "code": "headers_too_large"}]
    assert len(batch.request.content) > 100_000 and batch.status_code == 200, batch.text
    assert ok.status_code == 202
    assert copies(await topic_events(gateway.settings), body["event_id"]) == 1


async def test_an_endless_header_is_cut_off_not_buffered(gateway: Gateway) -> None:
    """A head that never ends: past the limit the server answers 431 and ends the connection."""
    reader, writer = await _connect(gateway.url)
    answer = asyncio.create_task(reader.read())  # everything until the server's EOF
    started, sent = time.monotonic(), 0
    writer.write(b"POST /v1/events HTTP/1.1\r\nHost: gateway\r\nX-Endless: ")
    try:
        while sent < 64 * MAX_HEAD and not answer.done():
            writer.write(b"a" * 1024)
            await writer.drain()
            sent += 1024
            await asyncio.sleep(0.001)
        head = await asyncio.wait_for(answer, 5)
    finally:
        writer.close()
    assert time.monotonic() - started < 10
    assert sent < 2 * MAX_HEAD, "the server kept reading an endless header"
    assert head.startswith(b"HTTP/1.1 431 "), head[:100]
    problem = json.loads(head.split(b"\r\n\r\n", 1)[1])
    assert problem["problems"][0]["code"] == "headers_too_large"


async def test_a_huge_header_sent_at_once_is_answered_431(gateway: Gateway) -> None:
    async with gateway.client() as http:
        response = await http.post("/v1/events", json=event_to_json(referral("made")),
                                   headers={"x-huge": "a" * 1_000_000})
    assert response.status_code == 431
    assert response.json()["problems"][0]["code"] == "headers_too_large"


@pytest.fixture
async def gateway_of_one(migrated: Settings) -> AsyncIterator[Gateway]:
    settings = migrated.model_copy(update={"api_max_in_flight": 1})
    token = await create_agency(settings, AGENCY, "HMP Leeds", "PRISON")
    with gateway_thread(settings) as url:
        yield Gateway(url, settings, token)


async def test_over_the_in_flight_limit_is_an_immediate_503(gateway_of_one: Gateway) -> None:
    gateway = gateway_of_one
    held, shed = referral("made"), referral("made")
    raw = json.dumps(event_to_json(held)).encode()
    # The held request: headers and half its body, then nothing until the test says so.
    reader, writer = await _connect(gateway.url)
    writer.write(b"POST /v1/events HTTP/1.1\r\nHost: gateway\r\n"
                 b"Authorization: Bearer " + gateway.token.encode() + b"\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw[:10])
    await writer.drain()
    async with gateway.client() as http:
        deadline = time.monotonic() + 5
        while (await http.post("/v1/events", json={})).status_code != 503:  # probe: 422
            assert time.monotonic() < deadline, "the held request never counted"
        started = time.monotonic()
        response = await http.post("/v1/events", json=event_to_json(shed))
        waited = time.monotonic() - started
        probes = [(await http.get(path)).status_code for path in ("/healthz", "/metrics")]
        writer.write(raw[10:])
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        retried = await http.post("/v1/events", json=event_to_json(shed))
        metrics = (await http.get("/metrics")).text
    assert response.status_code == 503 and waited < 0.5, (response.status_code, waited)
    assert response.headers["retry-after"] == "1"
    assert response.json()["problems"][0]["code"] == "overloaded"
    assert probes == [200, 200]
    assert head.startswith(b"HTTP/1.1 202 ")
    assert retried.status_code == 202
    assert 'reason="overloaded"' in metrics
    found = await topic_events(gateway.settings)
    assert (copies(found, held.event_id), copies(found, shed.event_id)) == (1, 1)


def test_a_server_on_h11_takes_the_same_head_limit(migrated: Settings) -> None:
    """uvicorn's own limit, for whoever runs the gateway with http="h11"."""
    from services.ingest.bootstrap import server

    config = server(migrated, migrate=False).config
    assert config.h11_max_incomplete_event_size == migrated.api_max_header_bytes


async def test_readiness_is_not_shed(gateway_of_one: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway_of_one.url) as http:
        answers = await asyncio.gather(*(http.get("/readyz") for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
