"""Log capture of a full run: the gateway, the worker, the read API and the duty service,
started as `joinedup up` starts them, while a simulated population is published through the
gateway, then a CLI command. Every non-empty line any of them writes,
on stdout or stderr, is one JSON object with a correlation id, a level, an event and a
timestamp, and no identifier value of any simulated person is in any of them."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.common.settings import Settings
from services.ingest.credentials import create_agency
from services.simulation import simulate
from services.stack.ports import free_port
from tests.integration.processor.conftest import wait_for
from tests.integration.test_log_redaction import post_by_agency, process_env, running, wait_ready

pytestmark = pytest.mark.integration

SERVERS = {"api": "JOINEDUP_API_PORT", "read-api": "JOINEDUP_READS_PORT",
           "duty serve": "JOINEDUP_DUTY_PORT"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
START = datetime(2026, 1, 5, tzinfo=UTC)  # also `joinedup simulate`'s default start
CLI_SIMULATION = {"seed": 37, "people": 5, "months": 1}


def _records(name: str, text: str) -> list[dict]:
    """Every non-empty line as a JSON object with the fields every line must have."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{name} line {number} is not JSON: {line[:300]}") from None
        assert isinstance(record, dict), f"{name} line {number}: {line[:300]}"
        missing = {"correlation_id", "level", "event", "timestamp"} - set(record)
        assert not missing, f"{name} line {number} lacks {missing}: {line[:300]}"
        assert record["correlation_id"], f"{name} line {number}: {line[:300]}"
        records.append(record)
    return records


async def _ids_returned(ports: dict[str, int]) -> None:
    """Each HTTP server takes the caller's trace id, else its request id, else makes one,
    and says which in X-Request-ID."""
    async with httpx.AsyncClient(timeout=5) as http:
        for command, port in ports.items():
            url = f"http://127.0.0.1:{port}/healthz"
            traced = await http.get(url, headers={
                "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "x-request-id": "ignored"})
            assert traced.headers["x-request-id"] == TRACE_ID, command
            named = await http.get(url, headers={"x-request-id": "batch-upload-7"})
            assert named.headers["x-request-id"] == "batch-upload-7", command
            fresh = [(await http.get(url)).headers["x-request-id"] for _ in range(2)]
            assert len(set(fresh)) == 2 and all(str(uuid.UUID(i)) == i for i in fresh), command


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_every_line_of_every_process_is_json_with_a_correlation_id(
        migrated: Settings, pool: asyncpg.Pool, tmp_path: Path, level: str) -> None:
    events = simulate(seed=31, people=30, months=2, start=START)
    agencies = sorted({(e.source.agency, e.source.service_kind) for e in events})
    tokens = {agency: await create_agency(migrated, agency, agency, kind)
              for agency, kind in agencies}
    ports = {command: free_port() for command in SERVERS}
    env = process_env(migrated, tmp_path, ports["api"], "INFO")
    env.update({"JOINEDUP_LOG_LEVEL": level,
                **{SERVERS[command]: str(port) for command, port in ports.items()}})
    env.pop("JOINEDUP_LOG_JSON")  # JSON is the default
    logs = {command: tmp_path / f"{command.replace(' ', '-')}.log"
            for command in (*SERVERS, "worker")}
    with ExitStack() as stack:
        processes = {command: stack.enter_context(running(command, env, log))
                     for command, log in logs.items()}
        await asyncio.gather(*(wait_ready(f"http://127.0.0.1:{port}", processes[command], 60)
                               for command, port in ports.items()))
        await post_by_agency(f"http://127.0.0.1:{ports['api']}", tokens, events)
        await _ids_returned(ports)
        await wait_for(pool, "SELECT count(*) FROM event_archive", len(events), timeout=60)
    assert {p.returncode for p in processes.values()} <= {0, -signal.SIGTERM}

    # A CLI run, at DEBUG and its libraries too (aiokafka's lines print what it sends): its output
    # (stdout, a progress bar) is not a log; its log (stderr) is.
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.operations.cli", "simulate", "--publish",
        *(f"--{name}={value}" for name, value in CLI_SIMULATION.items()),
        env={**env, "JOINEDUP_LOG_LEVEL": "DEBUG", "JOINEDUP_LOG_LIBRARY_LEVEL": "DEBUG"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode == 0, err.decode()[-2000:]

    texts = {command: log.read_text() for command, log in logs.items()}
    texts["simulate (stderr)"] = err.decode()
    records = {name: _records(name, text) for name, text in texts.items()}
    assert all(records.values()), {name: len(lines) for name, lines in records.items()}
    assert len({r["correlation_id"] for r in records["simulate (stderr)"]}) == 1  # one run

    published = simulate(**CLI_SIMULATION, start=START)
    values = {i.value for e in (*events, *published) for i in e.identifiers}
    everything = "".join(texts.values()) + out.decode()
    leaked = sorted(v for v in values if v in everything)
    assert not leaked, f"{len(leaked)} identifier values in the logs, e.g. {leaked[:5]}"

    # Lines outside any request or batch carry the process's id; each applied batch its own.
    worker = records["worker"]
    process_ids = {r["correlation_id"] for r in worker if r.get("logger") == "faust.worker"}
    assert len(process_ids) == 1
    if level == "DEBUG":
        batches = [r["correlation_id"] for r in worker
                   if r.get("logger") == "joinedup.consumer" and r["event"] == "batch applied"]
        assert len(batches) > 1 and len(set(batches)) == len(batches)
        assert not process_ids & set(batches)
    for command in SERVERS:  # uvicorn's own lines, outside any request
        assert any(r.get("logger", "").startswith("uvicorn") for r in records[command]), command

