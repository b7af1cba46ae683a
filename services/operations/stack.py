"""`joinedup up`: the local stack with the processor and the gateway, until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from services.common.db import wait_and_migrate
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.stack.local import StackAddresses, local_stack


def child_env(addresses: StackAddresses, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": addresses.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": addresses.kafka_bootstrap, **extra}


@contextmanager
def services_running(addresses: StackAddresses, commands: list[str], **env: str) -> Iterator[
        list[subprocess.Popen[bytes]]]:
    """Run `joinedup <command>` children; stop them (SIGTERM, then SIGKILL) on exit."""
    children = [subprocess.Popen([sys.executable, "-m", "services.operations.cli", command],
                                 env=child_env(addresses, **env)) for command in commands]
    try:
        yield children
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(20)
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
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with local_stack(settings.data_dir, settings.database_url, settings.kafka_bootstrap) as stack:
        for line in stack.started:
            console.print(f"[green]started[/green] {line}")
        prepare(settings, stack)
        console.print(f"topics: {', '.join(settings.topics.all())}")
        commands = ["worker"] + (["api"] if with_api else [])
        with services_running(stack, commands) as children:
            if with_api:
                console.print(f"ingest gateway: http://{settings.api_host}:{settings.api_port}"
                              "/docs")
            console.print("processor worker running. Ctrl-C stops everything.")
            signal.signal(signal.SIGTERM, _interrupt)
            try:
                while all(child.poll() is None for child in children):
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            # Shutdown is bounded (children get SIGTERM, then SIGKILL after 20 s): a second
            # Ctrl-C must not abandon the servers half-stopped.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            console.print("stopping...")
    console.print("stopped.")
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt
