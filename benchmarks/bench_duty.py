"""Duty teams: how soon an alert reaches a team, and how fast a full board renders.

Starts the embedded stack (or uses the configured servers), the real processor worker and
the duty service as their own processes (`joinedup worker`, `joinedup duty serve`), a
webhook receiver for the team and one open team stream. Then, for `--seconds`:
  * background load: ordinary agency events (contacts) at `--rate` events/s (default
    1,000), which raise nothing;
  * probes: every 100 ms a prison release to no fixed abode for a new person, which raises
    an immediate alert for the team.
For each probe: the time from handing it to the producer to (a) its `raised` event on the
open team stream and (b) its webhook at the receiver. The reference, measured in the same
run under the same load: a raw aiokafka round trip (produce one message, consume it) on the
same broker. Then the board: 1,000 open alerts for one team, time to the full page (server)
and to first contentful paint in headless Chromium when it is installed (`make browser`).

Every background person is met once before measuring (a person's first event costs the
identity step much more than the next ones; that is the identity benchmark's business).

Run: `make bench-duty`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.common import bench_settings
from services.alerts import teams
from services.alerts.events import alert_id_for
from services.alerts.webhooks import endpoints
from services.common.db import create_pool, wait_and_migrate
from services.common.event_log import EventLog
from services.common.events import AgencyEvent, Contact, Identifier, Source, Transition
from services.common.identifiers import make_nhs_number
from services.common.kafka import ensure_topics, make_producer, stop_consumer
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.ingest.credentials import create_agency
from services.reads import accounts
from services.stack.ports import free_port
from tests.servers import serving

RULE = "prison-release-no-settled-accommodation"
TEAM = "leeds-housing/options"
PASSWORD = "benchmark password 1"
BACKGROUND_PEOPLE = 2_000
PRISON = Source("hmp-leeds", "PRISON", "bench", "omu", "E08000035")
HOUSING = Source("leeds-housing", "HOUSING", "bench", "options", "E08000035")


def release(nhs: str) -> AgencyEvent:
    now = datetime.now(UTC)
    return AgencyEvent(str(uuid.uuid4()), "transition.occurred", now, now, PRISON,
                       (Identifier("nhs_number", nhs),),
                       Transition(f"rel-{uuid.uuid4().hex[:8]}", "PRISON_RELEASE",
                                  reason="RELEASED", accommodation_on_leaving="NO_FIXED_ABODE"),
                       "CRIMINAL_JUSTICE")


def contact(nhs: str) -> AgencyEvent:
    now = datetime.now(UTC)
    return AgencyEvent(str(uuid.uuid4()), "contact.attended", now, now, HOUSING,
                       (Identifier("nhs_number", nhs),), Contact(uuid.uuid4().hex[:12]))


def numbers(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [make_nhs_number(rng, "999") for _ in range(n)]


async def prepare(settings: Settings, hook_url: str) -> None:
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    for source in (PRISON, HOUSING):
        await create_agency(settings, source.agency, source.agency, source.service_kind)
    pool = await create_pool(settings, max_size=2)
    try:
        async with pool.acquire() as conn:
            await accounts.create_team(conn, "leeds-housing", "options", "Leeds housing options")
            await teams.set_route(conn, "housing:E08000035", TEAM, "bench")
            await teams.set_route(conn, "*", TEAM, "bench")
            await accounts.create_practitioner(conn, "bench.officer", "leeds-housing", TEAM,
                                               "practitioner", PASSWORD)
            await endpoints.add_endpoint(conn, settings.key_encryption_key(), TEAM, hook_url,
                                         "bench")
    finally:
        await pool.close()


@contextmanager
def processes(settings: Settings, duty_port: int) -> Iterator[None]:
    env = {**os.environ, "DATABASE_URL": settings.database_url or "",
           "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
           "JOINEDUP_DB_SCHEMA": settings.db_schema, "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
           "JOINEDUP_PROCESSOR_GROUP": settings.processor_group,
           "JOINEDUP_DUTY_PORT": str(duty_port), "JOINEDUP_LOG_LEVEL": "WARNING",
           "JOINEDUP_WORKER_HEALTH_PORT": str(free_port()),
           "JOINEDUP_DATA_DIR": str(settings.data_dir)}
    children = [subprocess.Popen([sys.executable, "-m", "services.operations.cli", *command],
                                 env=env) for command in (["worker"], ["duty", "serve"])]
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{duty_port}/readyz", timeout=2
                             ).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if any(c.poll() is not None for c in children) or time.monotonic() > deadline:
                raise RuntimeError("the worker or the duty service did not start")
            time.sleep(0.3)
        yield
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(30)


class Arrivals:
    """When each alert reached the stream and the receiver (monotonic seconds)."""

    def __init__(self) -> None:
        self.stream: dict[str, float] = {}
        self.webhook: dict[str, float] = {}

    async def receive(self, request: Request) -> Response:
        body = json.loads(await request.body())
        if body["data"]["action"] == "raised":
            self.webhook.setdefault(body["data"]["alert_id"], time.monotonic())
        return Response(status_code=204)


async def follow_stream(url: str, token: str, arrivals: Arrivals, ready: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=None, headers={
            "Authorization": f"Bearer {token}"}) as client, client.stream(
            "GET", f"/v1/teams/{TEAM}/stream") as stream:
        ready.set()
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                data = json.loads(line[5:])
                if data["action"] == "raised":
                    arrivals.stream.setdefault(data["alert_id"], time.monotonic())


async def _meet_everybody(settings: Settings) -> None:
    people = numbers(BACKGROUND_PEOPLE, seed=7)
    producer = make_producer(settings)
    await producer.start()
    try:
        log = EventLog(producer, settings.topics, settings.subject_keys())
        await asyncio.gather(*[await log.send(contact(nhs)) for nhs in people])
    finally:
        await producer.stop()
    pool = await create_pool(settings, max_size=1)
    try:
        while True:  # the processor is asynchronous: ask until all are in
            met = await pool.fetchval("SELECT count(*) FROM event_archive WHERE event_type = "
                                      "'contact.attended'")
            if met >= len(people):
                return
            await asyncio.sleep(0.5)
    finally:
        await pool.close()


async def load(settings: Settings, rate: float, seconds: float) -> int:
    """Background contacts at ``rate`` events/s, sent in 10 ms slices."""
    producer = make_producer(settings)
    await producer.start()
    log = EventLog(producer, settings.topics, settings.subject_keys())
    people = numbers(BACKGROUND_PEOPLE, seed=7)
    sent = 0
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            sends = [await log.send(contact(people[(sent + i) % len(people)]))
                     for i in range(due - sent)]
            sent = due
            if sends:
                await asyncio.gather(*sends)
            await asyncio.sleep(0.01)
    finally:
        await producer.stop()
    return sent


async def probes(settings: Settings, seconds: float,
                 walls: dict[str, datetime] | None = None) -> dict[str, float]:
    """A releasing prison every 100 ms: alert id -> when it was handed to the producer
    (monotonic; and on the wall clock in ``walls``)."""
    producer = make_producer(settings)
    await producer.start()
    log = EventLog(producer, settings.topics, settings.subject_keys())
    sent: dict[str, float] = {}
    people = iter(numbers(10_000, seed=11))
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            event = release(next(people))
            alert_id = alert_id_for(RULE, PRISON.agency, event.event_id)
            sent[alert_id] = time.monotonic()
            if walls is not None:
                walls[alert_id] = datetime.now(UTC)
            await (await log.send(event))
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()
    return sent


async def raw_round_trips(settings: Settings, seconds: float) -> list[float]:
    """The reference: one message produced and consumed back, every 100 ms, same broker."""
    topic = f"{settings.topic_prefix}.bench-round-trip"
    producer = make_producer(settings)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="latest", group_id=None,
                                fetch_max_wait_ms=10)
    await producer.start()
    await (await producer.send(topic, b"warm-up"))
    await consumer.start()
    await asyncio.sleep(1.0)
    sent: dict[bytes, float] = {}
    took: list[float] = []

    async def consume() -> None:
        async for record in consumer:
            if record.value in sent:
                took.append(time.monotonic() - sent[record.value])

    reading = asyncio.create_task(consume())
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            key = uuid.uuid4().bytes
            sent[key] = time.monotonic()
            await (await producer.send(topic, key))
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
    finally:
        reading.cancel()
        await stop_consumer(consumer)
        await producer.stop()
    return took


async def _committed(settings: Settings, walls: dict[str, datetime]) -> list[float]:
    """Where the time goes: from sending to the start of the transaction that raised the
    alert (the team feed row's ``recorded_at``; same machine, same clock)."""
    pool = await create_pool(settings, max_size=1)
    try:
        rows = await pool.fetch("SELECT alert_id::text, min(recorded_at) AS at FROM team_feed "
                                "WHERE action = 'raised' AND alert_id = ANY($1::uuid[]) "
                                "GROUP BY alert_id", list(walls))
    finally:
        await pool.close()
    return [(r["at"] - walls[r["alert_id"]]).total_seconds() for r in rows]


def percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0] if values else float("nan"),) * 2
    cuts = statistics.quantiles(values, n=100)
    return statistics.median(values), cuts[98]


async def measure(settings: Settings, url: str, token: str, arrivals: Arrivals, rate: float,
                  seconds: float, console: Console) -> Table:
    ready = asyncio.Event()
    streaming = asyncio.create_task(follow_stream(url, token, arrivals, ready))
    await asyncio.wait_for(ready.wait(), 30)
    # warm up: every background person known to the person index (a person's first event
    # costs the identity step far more than the next: that is not what is measured here),
    # and a few alerts through every hop
    await _meet_everybody(settings)
    await probes(settings, 2.0)
    await asyncio.sleep(3.0)
    console.print(f"load {rate:,.0f} events/s for {seconds:.0f} s, a probe every 100 ms ...")
    background = asyncio.create_task(load(settings, rate, seconds + 2))
    reference_task = asyncio.create_task(raw_round_trips(settings, seconds))
    walls: dict[str, datetime] = {}
    sent = await probes(settings, seconds, walls)
    reference = await reference_task
    loaded = await background
    await asyncio.sleep(5.0)
    streaming.cancel()
    to_stream = [arrivals.stream[a] - t for a, t in sent.items() if a in arrivals.stream]
    committed = await _committed(settings, walls)
    to_hook = [arrivals.webhook[a] - t for a, t in sent.items() if a in arrivals.webhook]
    table = Table(title=f"publish -> team ({len(sent)} alerts; {loaded:,} background events "
                        f"in {seconds + 2:.0f} s)")
    for column in ("path", "arrived", "p50 ms", "p99 ms", "p99 / raw p99"):
        table.add_column(column, justify="right")
    raw50, raw99 = percentiles(reference)
    table.add_row("raw aiokafka round trip (reference)", f"{len(reference)}",
                  f"{raw50 * 1000:,.0f}", f"{raw99 * 1000:,.0f}", "1.0")
    for name, values in (("alert committed (its transaction began)", committed),
                         ("team stream (SSE)", to_stream), ("webhook receiver", to_hook)):
        p50, p99 = percentiles(values)
        table.add_row(name, f"{len(values)}/{len(sent)}", f"{p50 * 1000:,.0f}",
                      f"{p99 * 1000:,.0f}", f"{p99 / raw99:,.1f}")
    return table


async def board(settings: Settings, url: str, token: str, alerts: int) -> Table:
    """A board with ``alerts`` open alerts: the full page from the server, and first
    contentful paint in headless Chromium (if installed)."""
    pool = await create_pool(settings, max_size=2)
    try:
        now = datetime.now(UTC)
        have = await pool.fetchval("SELECT count(*) FROM alert WHERE team_id = $1 AND "
                                   "status = 'open'", TEAM)
        await pool.execute(_SEED_ALERTS, TEAM, max(0, alerts - have), now - timedelta(days=2))
        total = await pool.fetchval("SELECT count(*) FROM alert WHERE team_id = $1 AND "
                                    "status = 'open'", TEAM)
        query = []
        for _ in range(20):
            started = time.perf_counter()
            await pool.fetch("SELECT * FROM alert WHERE team_id = $1 AND status = 'open' "
                             "ORDER BY severity, due_at", TEAM)
            query.append(time.perf_counter() - started)
    finally:
        await pool.close()
    cookies = {"joinedup_session": token}
    page = []
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as client:
        for _ in range(20):
            started = time.perf_counter()
            answer = await client.get("/board", params={"team": TEAM})
            page.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.status_code
    table = Table(title=f"the board with {total:,} open alerts")
    for column in ("measure", "median ms", "worst ms"):
        table.add_column(column, justify="right")
    table.add_row("bare SQL of the open alerts (reference)",
                  f"{statistics.median(query) * 1000:,.0f}", f"{max(query) * 1000:,.0f}")
    table.add_row("GET /board, whole page", f"{statistics.median(page) * 1000:,.0f}",
                  f"{max(page) * 1000:,.0f}")
    paints = await _first_paints(url, token)
    if paints:
        table.add_row("first contentful paint (Chromium)",
                      f"{statistics.median(paints):,.0f}", f"{max(paints):,.0f}")
    return table


CHROMIUM = Path("/usr/bin/chromium")


async def _first_paints(url: str, token: str) -> list[float]:
    if not CHROMIUM.is_file():  # noqa: ASYNC240 (once, before the browser starts)
        return []
    from playwright.async_api import async_playwright

    paints = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        context = await browser.new_context()
        await context.add_cookies([{"name": "joinedup_session", "value": token,
                                    "url": url}])
        for _ in range(5):
            page = await context.new_page()
            await page.goto(f"{url}/board?team={TEAM}", wait_until="load")
            found = await page.wait_for_function(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null",
                timeout=5000)
            paints.append(float(await found.json_value()))
            await page.close()
        await browser.close()
    return paints


# 1,000 open alerts for the board, written straight into the read model (as the rules and
# the projector write them); a mix of severities and deadlines.
_SEED_ALERTS = """
INSERT INTO alert (alert_id, person_key, rule_id, rule_version, severity, duty_team, title,
    explanation, source_reference, trigger_event_id, expected, window_start, due_at, status,
    raised_at, version, team_id, tier, area)
SELECT gen_random_uuid(), gen_random_uuid()::text, 'mh-72h-follow-up', 'bench',
    (ARRAY['critical', 'high', 'medium', 'low'])[1 + n % 4], 'housing:E08000035',
    'No follow-up within 72 hours of a mental-health inpatient discharge',
    'Trigger: a discharge. Expected: a follow-up.', 'NICE NG53', gen_random_uuid(),
    'a follow-up contact', $3::timestamptz, $3::timestamptz + make_interval(hours => 72 + n % 48),
    'open', $3::timestamptz, 1, $1, 1,
    'E08000035'
FROM generate_series(1, $2) AS n
"""


async def sign_in(url: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        answer = await client.post("/v1/sign-in", json={"username": "bench.officer",
                                                         "password": PASSWORD})
        answer.raise_for_status()
        return str(answer.json()["access_token"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="background events/s "
                        "(default: 1000)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to measure "
                        "(default: 30)")
    parser.add_argument("--board-alerts", type=int, default=1000, help="open alerts on the "
                        "board (default: 1000)")
    args = parser.parse_args()
    configure_logging("WARNING", json=False)
    console = Console()
    arrivals = Arrivals()
    receiver = Starlette(routes=[Route("/hook", arrivals.receive, methods=["POST"])])
    hook_port, duty_port = free_port(), free_port()
    with bench_settings() as settings, serving(uvicorn.Server(uvicorn.Config(
            receiver, host="127.0.0.1", port=hook_port, log_level="warning",
            access_log=False, lifespan="off")), "webhook receiver", hook_port):
        settings = settings.model_copy(update={"duty_port": duty_port})
        asyncio.run(prepare(settings, f"http://127.0.0.1:{hook_port}/hook"))
        url = f"http://127.0.0.1:{duty_port}"
        with processes(settings, duty_port):
            token = asyncio.run(sign_in(url))
            console.print(asyncio.run(measure(settings, url, token, arrivals, args.rate,
                                              args.seconds, console)))
            console.print(asyncio.run(board(settings, url, token, args.board_alerts)))
    console.print("targets: p99 < 1 s to the stream; the board < 500 ms")


if __name__ == "__main__":
    main()
