"""`joinedup up`: the local stack with the processor, the gateway, the read API and the
duty service (alert API, team streams, duty board), until Ctrl-C.

The terminal shows the stack's own messages (what started, where, what stopped); every
process's log lines (JSON) go to files in ``<data_dir>/logs``: ``up.log`` for this process
and one per child (``worker.log``, ``api.log``...). PostgreSQL and Tansu write their own
logs beside their data (see docs/logging.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from services.common.agencies import ensure_all_topics
from services.common.db import wait_and_migrate
from services.common.kafka import ensure_topics
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.operations.supervisor import (
    CONFIGURATION_REFUSED,
    Child,
    ConfigurationRefused,
    ProcessChild,
    Supervisor,
)
from services.stack.local import StackAddresses, local_stack


def child_env(addresses: StackAddresses, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": addresses.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": addresses.kafka_bootstrap, **extra}


def command_child(addresses: StackAddresses, command: str, logs: Path | None = None, **env: str
                  ) -> tuple[Child, ProcessChild]:
    """The child `joinedup <command>`, its output appended to a file in ``logs`` if given."""
    log = None if logs is None else logs / f"{command.replace(' ', '-')}.log"
    process = ProcessChild([sys.executable, "-m", "services.operations.cli", *command.split()],
                           child_env(addresses, **env), log=log)
    return Child(f"joinedup {command}", process.start, process.alive, process.exit_code,
                 log=log), process


def server_children(settings: Settings, addresses: StackAddresses) -> list[Child]:
    """The embedded servers, restarted on the same port (and data) if they die."""
    children = []
    if addresses.postgres is not None:
        postgres = addresses.postgres
        children.append(Child("PostgreSQL", lambda: _started(postgres.start()),
                              lambda: postgres.running))
    if addresses.broker is not None:
        broker = addresses.broker
        children.append(Child(
            "Tansu broker", lambda: _started(broker.start()), lambda: broker.running,
            # Memory storage comes back empty: the topics (every agency's too) are created
            # again at once, before clients write into topics the broker no longer lists (the
            # consumers see the new logs and replay them; the gateway answers 503 until then).
            after_restart=lambda: asyncio.run(ensure_all_topics(settings))))
    for child in children:
        child.started_at = time.monotonic()
    return children


@contextmanager
def services_running(addresses: StackAddresses, commands: list[str], **env: str) -> Iterator[
        list[subprocess.Popen[bytes]]]:
    """Run `joinedup <command>` children; stop them (SIGTERM, then SIGKILL) on exit."""
    children = [subprocess.Popen([sys.executable, "-m", "services.operations.cli",
                                  *command.split()], env=child_env(addresses, **env))
                for command in commands]
    try:
        yield children
    finally:
        stop_processes(children)


def stop_processes(children: list[subprocess.Popen[bytes]], grace: float = 20.0) -> None:
    """SIGTERM to every child at once; whoever has not stopped ``grace`` seconds later (one
    deadline for all, however many children) is killed."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def prepare(settings: Settings, addresses: StackAddresses) -> Settings:
    settings = settings.model_copy(update={"database_url": addresses.database_url,
                                           "kafka_bootstrap": addresses.kafka_bootstrap})
    asyncio.run(wait_and_migrate(settings))
    asyncio.run(ensure_topics(settings))
    return settings


def run_up(settings: Settings, with_api: bool = True) -> int:
    console = Console()
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    configure_logging(settings.log_level, settings.log_json,
                      library_level=settings.log_library_level, file=logs / "up.log")
    with local_stack(settings.data_dir, settings.database_url, settings.kafka_bootstrap) as stack:
        for line in stack.started:
            console.print(f"[green]started[/green] {line}")
        settings = prepare(settings, stack)
        console.print(f"topics: {', '.join(settings.topics.all())}")
        parts = [Part("processor worker", "worker", settings.worker_health_host,
                      settings.worker_health_port, "/metrics")]
        if with_api:
            parts += [Part("ingest gateway", "api", settings.api_host, settings.api_port, "/docs"),
                      Part("read API", "read-api", settings.reads_host, settings.reads_port,
                           "/docs"),
                      Part("duty board", "duty serve", settings.duty_host, settings.duty_port,
                           "/ (alert API: /docs)")]
        commands = [command_child(stack, part.command, logs) for part in parts]
        console.print(f"logs (JSON lines): {logs}/")
        supervisor = Supervisor(server_children(settings, stack) + [c for c, _ in commands],
                                console)
        # Both stop the stack, set here explicitly: a process started in the background by a
        # non-interactive shell inherits SIGINT ignored, and Python then keeps ignoring it.
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        status = 0
        try:
            for child, _ in commands:
                child.start()
                child.started_at = time.monotonic()
            # never advertise what did not start: each address once it answers
            until_serving(parts, [process for _, process in commands])
            for part in parts:
                console.print(f"{part.name}: {part.url}{part.shown}")
            console.print("running. Ctrl-C stops everything.")
            while True:
                supervisor.check()
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        except ConfigurationRefused as exc:
            console.print(f"[red]{exc}[/red]; stopping.")
            status = 2
        except PartFailed as exc:
            console.print(f"[red]{exc}[/red]; stopping.")
            if exc.log is not None:
                for line in last_lines(exc.log):
                    console.print(f"  {readable(line)}", markup=False, highlight=False)
            status = 2 if exc.exit_code == CONFIGURATION_REFUSED else 1
        finally:
            # Shutdown is bounded (children get SIGTERM, then SIGKILL after 20 s): a second
            # Ctrl-C must not abandon the servers half-stopped.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            console.print("stopping...")
            stop_processes([p.process for _, p in commands if p.process is not None])
    console.print("stopped.")
    return status


@dataclass(frozen=True)
class Part:
    """A process of the stack that serves HTTP: ready when its /healthz answers."""

    name: str
    command: str
    host: str
    port: int
    shown: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class PartFailed(RuntimeError):
    def __init__(self, reason: str, exit_code: int | None, log: Path | None = None) -> None:
        super().__init__(reason)
        self.exit_code = exit_code
        self.log = log


def last_lines(log: Path, count: int = 5) -> list[str]:
    """The end of a child's log: why it did not start, for the terminal."""
    try:
        return log.read_text(errors="replace").splitlines()[-count:]
    except OSError:
        return []


def readable(line: str) -> str:
    """A JSON log line as a person reads it (level, logger, event, the exception's last
    line); anything else as it is."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    text = f"{record.get('level', '')} {record.get('logger', '')}: {record.get('event', '')}"
    exception = str(record.get("exception", "")).strip()
    return f"{text} ({exception.splitlines()[-1]})" if exception else text


def until_serving(parts: list[Part], processes: list[ProcessChild],
                  timeout: float = 120.0) -> None:
    """Wait until every part answers /healthz; PartFailed if one exited (a port in use, a
    refused configuration: its own output above says which) or never answered."""
    deadline = time.monotonic() + timeout
    waiting = dict(zip([p.name for p in parts], zip(parts, processes, strict=True), strict=True))
    while waiting:
        for name, (part, process) in list(waiting.items()):
            code = process.exit_code()
            if code is not None:
                shown = ("its output is above" if process.log is None
                         else f"the end of its log {process.log} is below")
                raise PartFailed(f"the {name} did not start (exit status {code}; {shown})",
                                 code, process.log)
            try:
                if httpx.get(f"{part.url}/healthz", timeout=1.0).status_code == 200:
                    del waiting[name]
            except httpx.TransportError:
                pass
        if time.monotonic() > deadline:
            raise PartFailed(f"the {', '.join(waiting)} did not answer within {timeout:.0f} s",
                             None)
        time.sleep(0.3)


def _started(_: str) -> None:
    """Server start() returns its address; a supervised start returns nothing."""


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt
