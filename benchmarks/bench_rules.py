"""The rule pack's cost and its alert latency, measured in one run on one machine (issue 3).

1. Throughput. A simulated population (default 50,000 people over 4 months, 513,443
   events) is published once to one topic. The processor then reads the whole topic twice,
   each time into its own schema with its own consumer group: without rules, then with the
   full rule pack (expectations, markers, alert outbox and publishing). Each rate is taken
   from the first event settled (archived or dead-lettered) to the last. PostgreSQL COPY of
   the same timeline rows is printed as a reference. Target: rules >= 0.5 of no-rules.
2. Alert latency. The real worker (`joinedup worker`: Faust app with intake, deadline timer
   and alert projector) runs as a subprocess against a fresh topic and schema. A background
   producer paces simulated traffic at 1,000 events/s (open loop, for 60 s by default), and
   probes are published at random moments in between: a prison release (reason RELEASED, no
   fixed abode, recorded now) for a person never seen before, which the rule
   `prison-release-no-settled-accommodation` must alert on at once. Each probe's latency runs
   from just before its send to the moment its row is found in the PostgreSQL `alert` table
   (polled every 10 ms by person key, which is indexed). Target: p99 < 1 s.

The background history lies in the last three months, so the expectations it opens fall
due as it streams in and the worker's deadline timer raises them when it is caught up: the
alert projector carries that load too. The report splits each probe's latency into stages
(from the archive's and the alert's own timestamps and the alert record's CreateTime) and
shows the CPU each process used, so a miss can be traced to where the time went.
Run: `make bench-rules` (or `python -m benchmarks.bench_rules --people 5000 --months 3
--seconds 20` for a quick look). Embedded servers on loopback unless DATABASE_URL and
KAFKA_BOOTSTRAP_SERVERS name others.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from benchmarks.bench_processor import check_timeline, copy_rows, processor_rate
from benchmarks.common import bench_settings, print_table
from services.common.db import create_pool, wait_and_migrate
from services.common.event_log import EventLog
from services.common.events import AgencyEvent, Identifier, Transition
from services.common.identifiers import make_nhs_number
from services.common.kafka import ensure_topics, make_producer, stop_consumer
from services.common.logging import configure_logging
from services.common.serde.agency_event import encode_event
from services.common.settings import Settings
from services.operations.simulate import generate, publish_events, register_simulated_agencies
from services.simulation.agencies import AGENCY_BY_ID, LEEDS

IMMEDIATE_RULE = "prison-release-no-settled-accommodation"
PRISON = AGENCY_BY_ID["hmp-leeds"]
console = Console()


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def scoped(settings: Settings, name: str) -> Settings:
    """The same servers, with this measurement's own schema, topics and consumer group."""
    return settings.model_copy(update={
        "db_schema": f"{settings.db_schema}_{name}",
        "topic_prefix": f"{settings.topic_prefix}{name}",
        "processor_group": f"{settings.processor_group}-{name}",
        "admission_group": f"{settings.processor_group}-{name}-admission"})


# ---------------------------------------------------------------- 1. throughput


@dataclass
class Throughput:
    events: int
    people: int
    copy: float
    no_rules: float
    rules: float
    expectations: int
    load_no_rules: str
    load_rules: str


async def measure_throughput(settings: Settings, people: int, months: int) -> Throughput:
    """The same preloaded topic through the processor without, then with, the rule pack."""
    events = generate(11, people, months, datetime(2026, 1, 5, tzinfo=UTC))
    n = len(events)
    if n < 500_000:
        console.print(f"[yellow]note: {n:,} events, below the issue's 500,000[/]")
    await wait_and_migrate(settings)
    await register_simulated_agencies(settings)
    started = time.perf_counter()
    await publish_events(settings, events, show_progress=False)
    console.print(f"preloaded {n:,} events for {people:,} people "
                  f"in {time.perf_counter() - started:.0f} s")
    copy = await copy_rows(settings, events)
    del events
    no_rules = await processor_rate(settings, n, rules=False)
    load_no_rules = load()
    await check_timeline(settings, n)
    console.print(f"no rules: {no_rules:,.0f} events/s ({load_no_rules})")
    with_rules = settings.model_copy(update={
        "db_schema": settings.db_schema + "_rules",
        "processor_group": settings.processor_group + "-rules",
        "admission_group": settings.processor_group + "-rules-admission"})
    await wait_and_migrate(with_rules)
    await register_simulated_agencies(with_rules)
    rules = await processor_rate(with_rules, n, rules=True)
    load_rules = load()
    await check_timeline(with_rules, n)
    console.print(f"rule pack: {rules:,.0f} events/s ({load_rules})")
    conn = await asyncpg.connect(with_rules.database_url,
                                 server_settings={"search_path": with_rules.db_schema})
    try:
        expectations = await conn.fetchval("SELECT count(*) FROM expectation")
    finally:
        await conn.close()
    return Throughput(n, people, copy, no_rules, rules, expectations, load_no_rules, load_rules)


# ---------------------------------------------------------------- 2. alert latency


@contextmanager
def worker_process(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """`joinedup worker` as its own process, on this run's servers and names; always stopped."""
    env = {**os.environ, "DATABASE_URL": settings.database_url or "",
           "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
           "JOINEDUP_DB_SCHEMA": settings.db_schema, "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
           "JOINEDUP_PROCESSOR_GROUP": settings.processor_group,
           "JOINEDUP_WORKER_HEALTH_PORT": "0", "JOINEDUP_LOG_LEVEL": "WARNING",
           "JOINEDUP_DATA_DIR": str(settings.data_dir)}
    log_path = Path(settings.data_dir) / "worker.log"
    with open(log_path, "wb") as log_file:
        child = subprocess.Popen([sys.executable, "-m", "services.operations.cli", "worker"],
                                 env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            yield child
        finally:
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
    if child.returncode not in (0, -15):
        tail = log_path.read_text(errors="replace").splitlines()[-20:]
        console.print(f"worker exited with {child.returncode}; last lines of its log:")
        console.print("\n".join(tail), markup=False, highlight=False)


def probe_event(rng: random.Random, taken: set[str]) -> AgencyEvent:
    """A release into the community with no fixed abode, for a person nobody has seen."""
    while True:
        identifier = Identifier("nhs_number", make_nhs_number(rng, "999"))
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        now = datetime.now(UTC)
        event = AgencyEvent(
            event_id, "transition.occurred", now - timedelta(minutes=2), now,
            PRISON.source(LEEDS), (identifier,),
            Transition(f"bench-{event_id[:8]}", "PRISON_RELEASE", scheduled_for=now.date(),
                       reason="RELEASED", accommodation_on_leaving="NO_FIXED_ABODE",
                       location=PRISON.agency_id),
            PRISON.sensitivity)
        if event.identifier_key not in taken:
            taken.add(event.identifier_key)
            return event


@dataclass
class Probes:
    """Probes in flight: trigger event id -> (its NHS number, perf_counter at send)."""

    sent: dict[str, tuple[str, float]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)   # every probe's event id, seen or not
    wrong_person: int = 0   # alerts filed under another person than the probe resolved to


async def watch_alerts(pool: asyncpg.Pool, probes: Probes, stop: asyncio.Event,
                       every: float = 0.01) -> None:
    """Poll the alert read model for probes not yet seen; record when each one shows."""
    while not stop.is_set() or probes.sent:
        if probes.sent:
            rows = await pool.fetch(
                "SELECT a.trigger_event_id::text AS trigger, a.person_key,"
                "       i.value, i.person_id::text AS resolved FROM alert a"
                " LEFT JOIN person_index_identifier i ON i.person_id::text = a.person_key"
                "   AND i.scheme = 'nhs_number'"
                " WHERE a.trigger_event_id = ANY($1::uuid[]) AND a.rule_id = $2",
                list(probes.sent), IMMEDIATE_RULE)
            seen = time.perf_counter()
            for row in rows:
                if row["trigger"] not in probes.sent:
                    continue
                nhs, sent_at = probes.sent.pop(row["trigger"])
                probes.latencies.append(seen - sent_at)
                probes.wrong_person += row["value"] != nhs
        await asyncio.sleep(every)


async def send_probes(settings: Settings, probes: Probes, count: int, seconds: float,
                      taken: set[str]) -> None:
    """`count` probes at random moments spread over `seconds`, each sent on its own."""
    rng = random.Random(31)
    moments = sorted(rng.uniform(0.5, seconds - 0.5) for _ in range(count))
    producer = make_producer(settings)
    await producer.start()
    try:
        log = EventLog(producer, settings.topics, settings.subject_keys())
        start = time.perf_counter()
        for moment in moments:
            await asyncio.sleep(max(0.0, start + moment - time.perf_counter()))
            event = probe_event(rng, taken)
            probes.sent[event.event_id] = (event.strongest.value, time.perf_counter())
            probes.keys.append(event.event_id)
            await log.send(event)
        await producer.flush()
    finally:
        await producer.stop()


async def pace_background(settings: Settings, messages: list[tuple[str, bytes, bytes]],
                          rate: float) -> float:
    """Send `messages` at `rate` per second (open loop, in 10 ms slices); the rate achieved."""
    producer = make_producer(settings)
    await producer.start()
    try:
        start, pending = time.perf_counter(), []
        for i, (topic, key, value) in enumerate(messages):
            ahead = start + i / rate - time.perf_counter()
            if ahead > 0.01:
                await asyncio.sleep(ahead)
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 2_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        return len(messages) / (time.perf_counter() - start)
    finally:
        await producer.stop()


def cpu_by_role(worker_pid: int) -> dict[str, float]:
    """CPU seconds so far of this process and its children (servers and worker), by role."""
    roles = {"worker": 0.0, "PostgreSQL": 0.0, "broker": 0.0, "load generator": 0.0}
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        try:
            times, name = process.cpu_times(), process.name()
        except psutil.NoSuchProcess:
            continue
        role = ("load generator" if process.pid == me.pid else
                "worker" if process.pid == worker_pid else
                "PostgreSQL" if name.startswith("postgres") else
                "broker" if "tansu" in name.lower() else None)
        if role:
            roles[role] += times.user + times.system
    return roles


async def alert_send_times(settings: Settings, keys: set[str]) -> dict[str, datetime]:
    """When each probe's alert event was produced (the record's CreateTime, set at send),
    by the alert's key (the person id)."""
    consumer = AIOKafkaConsumer(
        settings.topics.alerts, bootstrap_servers=settings.kafka_bootstrap, group_id=None,
        auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        sent: dict[str, datetime] = {}
        deadline = time.monotonic() + 20
        while len(sent) < len(keys) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if r.key is not None and r.key.decode() in keys:
                        sent.setdefault(r.key.decode(),
                                        datetime.fromtimestamp(r.timestamp / 1000, UTC))
        return sent
    finally:
        await stop_consumer(consumer)


async def latency_stages(settings: Settings, pool: asyncpg.Pool, keys: list[str]
                         ) -> dict[str, list[float]]:
    """Where the time went, from the rows' own times (one machine, one clock). now() in
    PostgreSQL is the transaction's start, so the first stage ends when the batch's
    transaction began. The alert row is written in that same transaction (the alert projector
    then applies the topic's copy as a no-op), so it is visible when the batch commits."""
    rows = await pool.fetch(
        "SELECT a.person_key, e.recorded_at, e.archived_at FROM alert a"
        " JOIN event_archive e ON e.event_id = a.trigger_event_id"
        " WHERE a.trigger_event_id = ANY($1::uuid[])", keys)
    produced = await alert_send_times(settings, {r["person_key"] for r in rows})
    timed = [r for r in rows if r["person_key"] in produced]
    return {
        "probe sent -> processor batch transaction began":
            [(r["archived_at"] - r["recorded_at"]).total_seconds() for r in rows],
        "batch began -> committed and alert event published to the topic":
            [(produced[r["person_key"]] - r["archived_at"]).total_seconds() for r in timed],
    }


@dataclass
class Latency:
    latencies: list[float]
    probes: int
    missing: int
    wrong_person: int
    offered: float
    achieved: float
    seconds: float
    settled: int
    sent: int
    alerts: int
    stages: dict[str, list[float]]
    cpu: dict[str, float]   # share of one core each role used while sending
    load: str


async def wait_until_alerting(settings: Settings, pool: asyncpg.Pool, taken: set[str],
                              timeout: float = 120.0) -> float:
    """Warm-up: one probe end to end, which also waits out the worker's start and group joins."""
    probes, stop = Probes(), asyncio.Event()
    started = time.perf_counter()
    await send_probes(settings, probes, 1, 1.0, taken)
    stop.set()  # the watcher returns once the probe is seen
    watcher = asyncio.create_task(watch_alerts(pool, probes, stop, every=0.1))
    try:
        await asyncio.wait_for(watcher, timeout)
    except TimeoutError:
        raise RuntimeError(f"no alert from the worker within {timeout:.0f} s of a warm-up "
                           "probe; see worker.log") from None
    return time.perf_counter() - started


async def measure_alert_latency(settings: Settings, rate: float, seconds: float, probes_n: int,
                                settle: float = 30.0) -> Latency:
    """Probe latency to the alert table under paced background traffic, real worker."""
    months = 3
    wanted = int(rate * seconds)
    history_start = datetime.now(UTC) - timedelta(days=30 * months + 7)
    background = generate(23, max(1_000, wanted // 5), months, history_start)[:wanted]
    if len(background) < wanted:
        console.print(f"[yellow]note: only {len(background):,} background events[/]")
    taken = {e.identifier_key for e in background}
    keys = settings.subject_keys()
    messages = [(settings.topics.agency(e.source.agency), keys.of(e), encode_event(e))
                for e in background]
    await wait_and_migrate(settings)
    await register_simulated_agencies(settings)
    await ensure_topics(settings, agencies={e.source.agency for e in background} | {
        PRISON.agency_id})
    del background
    pool = await create_pool(settings, max_size=3)
    try:
        with worker_process(settings) as worker:
            warm = await wait_until_alerting(settings, pool, taken)
            console.print(f"worker up and alerting ({warm:.1f} s from start to first alert)")
            probes, stop = Probes(), asyncio.Event()
            watcher = asyncio.create_task(watch_alerts(pool, probes, stop))
            cpu_before = cpu_by_role(worker.pid)
            begun = time.perf_counter()
            achieved, _ = await asyncio.gather(
                pace_background(settings, messages, rate),
                send_probes(settings, probes, probes_n, seconds, taken))
            elapsed = time.perf_counter() - begun
            cpu = {role: (used - cpu_before[role]) / elapsed
                   for role, used in cpu_by_role(worker.pid).items()}
            settled = await pool.fetchval(
                "SELECT (SELECT count(*) FROM event_archive) + (SELECT count(*) FROM dead_letter)")
            run_load = load()
            stop.set()
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(watcher), settle)
            watcher.cancel()
            missing = len(probes.sent)
            alerts = await pool.fetchval("SELECT count(*) FROM alert")
            stages = await latency_stages(settings, pool, probes.keys)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker stopped early ({worker.returncode})")
    finally:
        await pool.close()
    return Latency(probes.latencies, probes_n, missing, probes.wrong_person, rate, achieved,
                   elapsed, settled, len(messages) + probes_n + 1, alerts, stages, cpu,
                   run_load)


# ---------------------------------------------------------------- report


def report(throughput: Throughput | None, latency: Latency | None) -> None:
    if throughput:
        t = throughput
        ratio = t.rules / t.no_rules
        print_table(
            f"Processor throughput, {t.events:,} events for {t.people:,} people, one worker",
            [("PostgreSQL COPY (timeline rows)", t.copy, "1.00 (reference)"),
             ("processor, no rules", t.no_rules, f"{t.no_rules / t.copy:.2f} of COPY"),
             ("processor, full rule pack", t.rules,
              f"{ratio:.2f} of no-rules ({'meets' if ratio >= 0.5 else 'MISSES'} >= 0.5)")],
            note=f"{t.expectations:,} expectations opened with rules; "
                 f"no rules: {t.load_no_rules}; rules: {t.load_rules}")
    if latency:
        lat = latency
        table = Table(title=f"Immediate alert latency, publish -> PostgreSQL `alert` row, "
                            f"real worker, {lat.probes} probes")
        table.add_column("measure")
        table.add_column("value", justify="right")
        if len(lat.latencies) >= 2:
            ms = sorted(x * 1000 for x in lat.latencies)
            cuts = statistics.quantiles(ms, n=100, method="inclusive")
            for name, value in (("p50", cuts[49]), ("p95", cuts[94]), ("p99", cuts[98]),
                                ("max", ms[-1])):
                table.add_row(name, f"{value:,.0f} ms")
            verdict = "meets" if cuts[98] < 1000 and not lat.missing else "MISSES"
            table.add_row("target p99 < 1 s", verdict)
        for stage, values in lat.stages.items():
            if len(values) >= 2:
                cuts = statistics.quantiles(values, n=100, method="inclusive")
                table.add_row(f"  {stage}: p50 / p99",
                              f"{cuts[49] * 1000:,.0f} / {cuts[98] * 1000:,.0f} ms")
        table.add_row("probes seen / not seen / alert filed under another person",
                      f"{len(lat.latencies)} / {lat.missing} / {lat.wrong_person}")
        table.add_row("background load offered / achieved",
                      f"{lat.offered:,.0f} / {lat.achieved:,.0f} events/s")
        table.add_row("events sent (background and probes) / settled when sending ended",
                      f"{lat.sent:,} / {lat.settled:,} in {lat.seconds:.0f} s")
        table.add_row("alerts in the read model at the end (all rules)", f"{lat.alerts:,}")
        table.add_row(f"CPU while sending ({' / '.join(lat.cpu)})",
                      " / ".join(f"{share:.0%}" for share in lat.cpu.values()))
        console.print(table)
        console.print(f"during the latency run: {lat.load}")
    console.print("other processes on the machine skew every figure")


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING", json=False)
    console.print(f"before: {load()}")
    throughput = latency = None
    with bench_settings() as settings:
        if not args.skip_throughput:
            throughput = await measure_throughput(settings, args.people, args.months)
        if not args.skip_latency:
            latency = await measure_alert_latency(scoped(settings, "live"), args.rate,
                                                  args.seconds, args.probes)
    report(throughput, latency)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--months", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1_000.0, help="background events/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="latency run length")
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    asyncio.run(main(parser.parse_args()))
