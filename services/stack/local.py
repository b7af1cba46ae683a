"""The local stack: servers from the environment, or embedded ones started here.

`joinedup up` writes the addresses it started to `<data_dir>/stack.env`, so that other
`joinedup` commands in another terminal find the running stack without extra settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.stack.broker import EmbeddedBroker
from services.stack.postgres import EmbeddedPostgres

STACK_ENV = "stack.env"


@dataclass(frozen=True)
class StackAddresses:
    database_url: str
    kafka_bootstrap: str
    started: tuple[str, ...]  # which servers this process started (for the banner)
    # The embedded servers this process runs (None: configured from outside), so a supervisor
    # can start one again on the same port if it dies.
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None


@contextmanager
def local_stack(data_dir: Path, database_url: str | None, kafka_bootstrap: str | None,
                *, durable: bool = True) -> Iterator[StackAddresses]:
    """Start what is not configured; stop what was started, in reverse order, on exit."""
    postgres = broker = None
    started: list[str] = []
    try:
        if not database_url:
            postgres = EmbeddedPostgres(data_dir.resolve() / "postgres" / "data", durable=durable)
            database_url = postgres.start()
            started.append(f"PostgreSQL  {database_url}  data {postgres.data_dir}")
        if not kafka_bootstrap:
            broker = EmbeddedBroker(data_dir.resolve() / "tansu.log")
            kafka_bootstrap = broker.start()
            started.append(f"Tansu broker {kafka_bootstrap}  (memory storage)  log {broker.log_file}")
        env_file = data_dir / STACK_ENV
        env_file.write_text(
            f"DATABASE_URL={database_url}\nKAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap}\n")
        try:
            yield StackAddresses(database_url, kafka_bootstrap, tuple(started), postgres, broker)
        finally:
            env_file.unlink(missing_ok=True)
    finally:
        if broker:
            broker.stop()
        if postgres:
            postgres.stop()


def load_stack_env(data_dir: Path) -> None:
    """Adopt a running `joinedup up` stack's addresses unless the environment names servers."""
    env_file = data_dir / STACK_ENV
    if not env_file.exists():
        return
    for line in env_file.read_text().splitlines():
        name, _, value = line.partition("=")
        if name and value:
            os.environ.setdefault(name, value)
