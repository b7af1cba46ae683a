"""The real gateway (`joinedup api`) and the real worker (`joinedup worker`) at DEBUG log no
identifier value of any simulated person, whether the events came over HTTP or straight
onto Kafka; with the libraries at their default level (INFO) and with them at DEBUG too, when
the filter is all that stands between aiokafka's key/value lines and the log (and those lines,
logged inside a request, carry its correlation id). The helpers here start the processes for
tests/integration/test_json_logs.py too."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.common.events import AgencyEvent
from services.common.logging import LIBRARY_LOGGERS
from services.common.settings import Settings
from services.ingest.client import JoinedupClient
from services.ingest.credentials import create_agency
from services.simulation import simulate
from services.stack.ports import free_port, stop_child
from tests.integration.processor.conftest import publish, register_sources, wait_for

pytestmark = pytest.mark.integration


def process_env(settings: Settings, data_dir: Path, port: int, library_level: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
        "JOINEDUP_DB_SCHEMA": settings.db_schema,
        "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
        "JOINEDUP_PROCESSOR_GROUP": settings.processor_group,
        "JOINEDUP_BATCH_MAX_EVENTS": "100",
        "JOINEDUP_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "JOINEDUP_DATA_DIR": str(data_dir),
        "JOINEDUP_API_HOST": "127.0.0.1",
        "JOINEDUP_API_PORT": str(port),
        "JOINEDUP_WORKER_HEALTH_PORT": str(free_port()),  # not the default: tests run in parallel
        "JOINEDUP_LOG_LEVEL": "DEBUG",
        "JOINEDUP_LOG_LIBRARY_LEVEL": library_level,
        "JOINEDUP_LOG_JSON": "true",
    }


@contextmanager
def running(command: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`joinedup <command>` with its stdout and stderr both captured in `log`."""
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "services.operations.cli", *command.split()],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop_child(process, signal.SIGTERM, 30)


async def wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        while asyncio.get_running_loop().time() < deadline:
            assert server.poll() is None, f"{url}: the server exited"
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url}: the server did not become ready")


async def post_by_agency(url: str, tokens: dict[str, str], events: Sequence[AgencyEvent]) -> None:
    """Each agency's events with its own token (the gateway takes only the token's agency's)."""
    for agency, token in tokens.items():
        mine = [e for e in events if e.source.agency == agency]
        async with JoinedupClient(url, token) as client:
            for start in range(0, len(mine), 200):
                published = await client.publish_batch(mine[start:start + 200])
                assert all(p.written for p in published), [p for p in published if not p.written]


def _records(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a traceback's continuation, or something printed: still searched
        if isinstance(record, dict):
            records.append(record)
    return records


def _from_library(record: dict) -> bool:
    return str(record.get("logger", "")).split(".")[0] in LIBRARY_LOGGERS


@pytest.mark.parametrize("library_level", ["INFO", "DEBUG"])
async def test_debug_logs_hold_no_identifier_values(
        migrated: Settings, pool: asyncpg.Pool, tmp_path: Path, library_level: str) -> None:
    events = simulate(seed=23, people=50, months=3, start=datetime(2026, 1, 5, tzinfo=UTC))
    agencies = sorted({(e.source.agency, e.source.service_kind) for e in events})
    over_http, direct = agencies[::2], agencies[1::2]
    tokens = {agency: await create_agency(migrated, agency, agency, kind)
              for agency, kind in over_http}
    await register_sources(pool, direct)
    by_http = [e for e in events if e.source.agency in tokens]
    by_kafka = [e for e in events if e.source.agency not in tokens]
    assert by_http and by_kafka

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = process_env(migrated, tmp_path, port, library_level)
    gateway_log, worker_log = tmp_path / "gateway.log", tmp_path / "worker.log"
    with running("api", env, gateway_log) as gateway, running("worker", env, worker_log) as worker:
        await wait_ready(url, gateway)
        await asyncio.gather(post_by_agency(url, tokens, by_http), publish(migrated, by_kafka))
        await wait_for(pool, "SELECT count(*) FROM event_archive", len(events), timeout=60)
    assert {gateway.returncode, worker.returncode} <= {0, -signal.SIGTERM}  # clean shutdowns

    gateway_text, worker_text = gateway_log.read_text(), worker_log.read_text()
    text = gateway_text + worker_text
    values = {i.value for e in events for i in e.identifiers}
    assert len(values) > 100
    leaked = sorted(v for v in values if v in text)
    assert not leaked, f"{len(leaked)} identifier values in the logs, e.g. {leaked[:5]}"

    # The logs were really written, at DEBUG, by both processes and by the libraries.
    gateway_records, worker_records = _records(gateway_text), _records(worker_text)
    assert any(r.get("level") == "debug" and str(r.get("logger", "")).startswith("joinedup")
               for r in worker_records)
    for records in (gateway_records, worker_records):
        assert any(r.get("level") == "info" and _from_library(r) for r in records)
    library_debug = [r for r in gateway_records + worker_records
                     if r.get("level") == "debug" and _from_library(r)]
    if library_level == "INFO":
        assert not library_debug, library_debug[:3]
    else:  # aiokafka printed keys and values, and the filter replaced them
        assert any("<redacted" in str(r.get("event")) for r in library_debug
                   if str(r["logger"]).startswith("aiokafka"))
        # ...inside the requests that published them: those lines carry the requests' ids
        outside = {r["correlation_id"] for r in gateway_records if r["logger"] == "uvicorn.error"}
        sending = {r["correlation_id"] for r in gateway_records
                   if str(r["event"]).startswith("Sending (key=")}
        assert len(outside) == 1 and len(sending) > 1 and not sending & outside
