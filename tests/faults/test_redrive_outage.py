"""A dead letter re-driven (`POST /v1/operations/dead-letters/{id}/redrive`) at the moment a
server goes away. The re-drive writes in two places: the copy onto the topic it was parked
from (the broker), then, in the transaction that holds the dead letter's row, the record of
it and its audit row (PostgreSQL). The riskiest moments are therefore after the broker has
the copy and before PostgreSQL commits, and a broker that stops answering while it is
sending. Either way the answer is 503 with Retry-After and nothing is recorded (the letter
stays open, no `ok` audit row), and the re-drive run again once the server is back is
recorded once and the event reaches the timeline once (the archive recognises a copy the
failed attempt may have left on the topic).

Before: a broker that stopped answering during the send was answered 500 (a KafkaError no
handler knew); one that did not answer the read-back of the copy, 409 "conflict"."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.common.agencies import register_agency
from services.common.db import wait_and_migrate
from services.common.dead_letters import REDRIVE_OF
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.operations import dead_letters as dead_letters_module
from services.reads import accounts
from services.reads.entrypoints.http import create_app
from services.stack.broker import EmbeddedBroker
from services.stack.postgres import EmbeddedPostgres
from tests import factories as f
from tests.conftest import Servers, make_settings
from tests.faults.conftest import FAST_RETRY, InProcess, start_in_process, wait_until
from tests.integration.operations.test_dead_letters import (
    LATE,
    on_timeline,
    publish_traced,
    until_admitted,
)
from tests.integration.operations.test_dead_letters_api import PASSWORD, sign_in
from tests.integration.processor.conftest import read_topic, wait_for

pytestmark = pytest.mark.faults

OPS = "ops.one"
REDRIVE = "SELECT action, outcome FROM access_audit WHERE action = 'dead_letter.redrive' " \
          "ORDER BY seq"


class _Interrupted:
    """The re-drive's producer, with a fault injected around its one send: `before` runs
    just before the copy is handed to the broker, `after` once the broker acknowledged it
    (and before the re-drive records it)."""

    def __init__(self, producer: AIOKafkaProducer, before: Callable[[], Awaitable[None]] | None,
                 after: Callable[[], Awaitable[None]] | None) -> None:
        self._producer = producer
        self._before, self._after = before, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        if self._before is not None:
            await self._before()
        sent = await (await self._producer.send(*args, **kwargs))
        if self._after is not None:
            await self._after()
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(sent)
        return done


def _interrupt(monkeypatch: pytest.MonkeyPatch, *,
               before: Callable[[], Awaitable[None]] | None = None,
               after: Callable[[], Awaitable[None]] | None = None) -> None:
    """The fault fires on the next re-drive only; later ones run as usual."""
    real = dead_letters_module.make_producer
    armed = [True]

    def make(settings: Settings, **overrides: object) -> Any:
        producer = real(settings, **overrides)
        if not armed[0]:
            return producer
        armed[0] = False
        return _Interrupted(producer, before, after)
    monkeypatch.setattr(dead_letters_module, "make_producer", make)


async def _ready(settings: Settings) -> InProcess:
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    running = await start_in_process(settings)
    async with running.processor.pool.acquire() as conn:
        await register_agency(conn, f.SOURCES["HOUSING"].agency, "Housing", "HOUSING")
        await accounts.create_practitioner(conn, OPS, f.SOURCES["HOUSING"].agency, None,
                                           "operations", PASSWORD)
    return running


async def _parked_then_fixed(running: InProcess) -> tuple[int, Any]:
    """An event parked (its agency not registered), then its cause fixed: the agency
    registered and seen to be by admission. Returns the dead letter's id and the event."""
    settings, pool = running.processor.settings, running.processor.pool
    event = dataclasses.replace(f.contact("attended", contact_id="c-outage"), source=LATE)
    await publish_traced(settings, [event])
    await wait_for(pool, "SELECT count(*) FROM dead_letter", 1)
    letter = await pool.fetchval("SELECT id FROM dead_letter")
    await register_agency(pool, LATE.agency, "Late agency", LATE.service_kind)
    await until_admitted(settings, pool)
    return int(letter), event


@pytest.fixture
async def api_of() -> AsyncIterator[Callable[[Settings], Awaitable[httpx.AsyncClient]]]:
    """The read API (over ASGI) on given settings, shut down at the end."""
    opened: list[tuple[Any, httpx.AsyncClient]] = []

    async def make(settings: Settings) -> httpx.AsyncClient:
        app = create_app(settings, migrate=False)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://test", timeout=60)
        opened.append((lifespan, client))
        return client
    yield make
    for lifespan, client in opened:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


def _unavailable(answer: httpx.Response, event: Any) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"].isdigit()
    assert not any(i.value in answer.text for i in event.identifiers)  # no personal data


async def _redriven_copies(settings: Settings) -> int:
    """Re-driven copies on the agency's topic (the log holds every copy ever sent)."""
    records = await read_topic(settings.kafka_bootstrap or "", settings.topics.agency(
        LATE.agency), 10**6, timeout=3.0)
    return sum(1 for r in records if any(k == REDRIVE_OF for k, _ in r.headers or ()))


async def _recorded_once(settings: Settings, pool: asyncpg.Pool, letter: int, event: Any
                         ) -> None:
    """The re-drive recorded and audited once, and the event on the timeline once: the
    person's next event, behind any copy on the same partition, is applied and no second
    entry appeared."""
    row = await pool.fetchrow("SELECT redriven_at, redriven_offset FROM dead_letter "
                              "WHERE id = $1", letter)
    assert row["redriven_at"] is not None and row["redriven_offset"] is not None
    outcomes = [r["outcome"] for r in await pool.fetch(REDRIVE)]
    assert outcomes[-1] == "ok" and outcomes.count("ok") == 1, outcomes
    await wait_for(pool, on_timeline(event), 1)
    later = dataclasses.replace(f.contact("attended", contact_id="c-outage-next"), source=LATE)
    await publish_traced(settings, [later])
    await wait_for(pool, on_timeline(later), 1)
    assert await pool.fetchval(on_timeline(event)) == 1
    assert await pool.fetchval("SELECT count(*) FROM dead_letter WHERE redrive_of = $1",
                               letter) == 0  # no copy was parked again


async def test_database_gone_after_the_broker_has_the_copy(
        servers: Servers, own_postgres: EmbeddedPostgres,
        api_of: Callable[[Settings], Awaitable[httpx.AsyncClient]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(servers, database_url=own_postgres.url, **FAST_RETRY)
    running = await _ready(settings)
    pool = running.processor.pool
    try:
        letter, event = await _parked_then_fixed(running)
        api = await api_of(settings)
        ops = await sign_in(api, OPS)

        async def database_goes_away() -> None:
            await asyncio.to_thread(own_postgres.stop)
        _interrupt(monkeypatch, after=database_goes_away)
        path = f"/v1/operations/dead-letters/{letter}/redrive"
        _unavailable(await api.post(path, json={"reason": "agency registered"}, headers=ops),
                     event)

        await asyncio.to_thread(own_postgres.start)

        async def answered() -> httpx.Response | None:
            again = await api.post(path, json={"reason": "agency registered"}, headers=ops)
            if again.status_code == 503:
                return None
            return again
        again = await wait_until(answered, 60, 0.5)
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "redriven"
        await _recorded_once(settings, pool, letter, event)
        # the failed attempt's copy (acknowledged, never recorded) and the recorded one:
        # sent twice, applied once
        assert await _redriven_copies(settings) == 2
    finally:
        await running.stop()


def _freeze(broker: EmbeddedBroker, sig: signal.Signals) -> None:
    """SIGSTOP / SIGCONT the broker: it stops answering, keeping what it holds (the
    embedded broker stores in memory, so a kill would lose the copy being re-driven)."""
    process = broker._process
    assert process is not None
    os.kill(process.pid, sig)


async def test_broker_stops_answering_during_the_send(
        servers: Servers, own_broker: EmbeddedBroker,
        api_of: Callable[[Settings], Awaitable[httpx.AsyncClient]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(servers, kafka_bootstrap=own_broker.bootstrap, **FAST_RETRY)
    running = await _ready(settings)
    pool = running.processor.pool
    try:
        letter, event = await _parked_then_fixed(running)
        api = await api_of(settings)
        ops = await sign_in(api, OPS)

        async def broker_goes_silent() -> None:
            _freeze(own_broker, signal.SIGSTOP)
        _interrupt(monkeypatch, before=broker_goes_silent)
        path = f"/v1/operations/dead-letters/{letter}/redrive"
        try:
            answer = await api.post(path, json={"reason": "agency registered"}, headers=ops)
        finally:
            _freeze(own_broker, signal.SIGCONT)
        _unavailable(answer, event)
        assert "broker" in answer.json()["detail"]
        held = await pool.fetchrow("SELECT redriven_at FROM dead_letter WHERE id = $1", letter)
        assert held["redriven_at"] is None  # nothing recorded for an unconfirmed send
        assert [r["outcome"] for r in await pool.fetch(REDRIVE)] == ["unavailable"]

        again = await api.post(path, json={"reason": "agency registered"}, headers=ops)
        assert again.status_code == 200, again.text
        await _recorded_once(settings, pool, letter, event)
        # the frozen broker may have written the first copy once thawed: applied once all the same
        assert await _redriven_copies(settings) in (1, 2)
    finally:
        await running.stop()
