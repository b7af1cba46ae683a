"""`joinedup up` end to end, as a newcomer runs it: embedded PostgreSQL and broker, the worker,
the gateway, the read API and the duty service. A worker killed with SIGKILL is started
again by the stack (it used to stop everything), and so is a broker that dies (its topics
are created again at once); events posted through the gateway before, between and after
are all applied, once."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import psutil
import pytest

from services.ingest.client import JoinedupClient
from services.stack.ports import free_port
from tests.factories import SOURCES
from tests.faults.test_positions import people_events

pytestmark = pytest.mark.faults


CLI = [sys.executable, "-m", "services.operations.cli"]


def _start(args: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*CLI, *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def _run(args: list[str], env: dict[str, str]) -> str:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, check=True,
                          text=True).stdout


def _children(up: subprocess.Popen[bytes], needle: str) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(up.pid).children(recursive=True):
        try:
            if needle in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


async def _until(predicate, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out: {predicate.__name__}")


async def test_joinedup_up_restarts_a_killed_worker_and_broker(tmp_path: Path) -> None:
    api_port, health_port, reads_port, duty_port = (free_port(), free_port(), free_port(),
                                                    free_port())
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env.update({"JOINEDUP_DATA_DIR": str(tmp_path / "data"), "JOINEDUP_API_PORT": str(api_port),
                "JOINEDUP_WORKER_HEALTH_PORT": str(health_port), "JOINEDUP_LOG_LEVEL": "WARNING",
                "JOINEDUP_READS_PORT": str(reads_port), "JOINEDUP_DUTY_PORT": str(duty_port),
                "JOINEDUP_RETRY_MAX_SECONDS": "2"})
    log = (tmp_path / "up.log").open("wb")
    up = _start(["up"], env, log)
    url = f"http://127.0.0.1:{api_port}"
    try:
        stack_env = tmp_path / "data" / "stack.env"

        async def gateway_ready() -> bool:
            assert up.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"{url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False
        await _until(gateway_ready, 120)

        async def read_api_and_duty_service_ready() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    return all([(await http.get(f"http://127.0.0.1:{port}/readyz")
                                 ).status_code == 200 for port in (reads_port, duty_port)])
            except httpx.TransportError:
                return False
        await _until(read_api_and_duty_service_ready, 60)
        database_url = dict(line.split("=", 1) for line in
                            stack_env.read_text().splitlines())["DATABASE_URL"]
        agency = SOURCES["PRISON"].agency
        token = _run(["agency", "create", agency, "--name", "HMP Leeds",
                      "--service-kind", "PRISON"], env).strip().splitlines()[-1]
        batches = [people_events(30, seed=s) for s in (1, 2, 3)]

        async def archived() -> int:
            conn = await asyncpg.connect(database_url, server_settings={"search_path": "joinedup"})
            try:
                return int(await conn.fetchval("SELECT count(*) FROM event_archive"))
            finally:
                await conn.close()

        async with JoinedupClient(url, token, attempts=60, backoff=0.2, max_backoff=2) as client:
            assert all(r.written for r in await client.publish_batch(batches[0]))
            await _until(lambda: _at_least(archived, 30))

            [worker] = _children(up, "services.operations.cli worker")
            worker.send_signal(signal.SIGKILL)
            await _until(lambda: _restarted(up, "services.operations.cli worker", worker.pid))
            assert all(r.written for r in await client.publish_batch(batches[1]))
            await _until(lambda: _at_least(archived, 60))

            [broker] = _children(up, "tansu")  # a child exiting meanwhile is skipped
            broker.send_signal(signal.SIGKILL)
            await asyncio.sleep(1.0)
            assert all(r.written for r in await client.publish_batch(batches[2]))
            await _until(lambda: _at_least(archived, 90), 120)
        assert up.poll() is None, "the stack stopped"
        conn = await asyncpg.connect(database_url, server_settings={"search_path": "joinedup"})
        try:
            ids = {r[0] for r in await conn.fetch("SELECT event_id::text FROM event_archive")}
            resets = await conn.fetchval("SELECT count(*) FROM log_reset")
        finally:
            await conn.close()
        assert ids == {e.event_id for batch in batches for e in batch}
        assert resets > 0  # the broker's new, empty logs were noticed, not skipped silently
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()
    output = (tmp_path / "up.log").read_text()
    assert "joinedup worker stopped" in output and "started again" in output
    assert up.returncode == 0, output[-3000:]


async def _at_least(count, n: int) -> bool:  # type: ignore[no-untyped-def]
    return await count() >= n


async def _restarted(up: subprocess.Popen[bytes], needle: str, old_pid: int) -> bool:
    return any(p.pid != old_pid for p in _children(up, needle))


def test_joinedup_up_stops_and_says_so_when_a_part_cannot_start(tmp_path: Path) -> None:
    """The gateway's port is taken: `joinedup up` says which part did not start, advertises
    no address it does not serve, stops everything and exits non-zero."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
        env.update({"JOINEDUP_DATA_DIR": str(tmp_path / "data"),
                    "JOINEDUP_API_PORT": str(taken.getsockname()[1]),
                    "JOINEDUP_WORKER_HEALTH_PORT": str(free_port()),
                    "JOINEDUP_READS_PORT": str(free_port()),
                    "JOINEDUP_DUTY_PORT": str(free_port()), "JOINEDUP_LOG_LEVEL": "WARNING"})
        up = subprocess.run([*CLI, "up"], env=env, capture_output=True, text=True,
                            timeout=240)
    finally:
        taken.close()
    assert up.returncode == 1, up.stdout[-2000:]
    assert "the ingest gateway did not start" in up.stdout
    assert "ingest gateway: http" not in up.stdout and "Traceback" not in up.stderr
    assert "stopped." in up.stdout
