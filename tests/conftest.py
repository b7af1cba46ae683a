"""One embedded PostgreSQL and one Tansu broker per test session; isolation per test by
unique database schema, topic prefix and consumer group.

Set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS to run against servers of your own instead.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import settings as hypothesis_settings

from services.common.db import create_pool, wait_and_migrate
from services.common.kafka import ensure_topics
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.stack.broker import EmbeddedBroker
from services.stack.postgres import EmbeddedPostgres
from tests.logwatch import SessionLog

# CI explores the same examples every run, so a red build always means a change broke
# something; local runs keep exploring new examples.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


#: every log record of the session, as production prints it (see tests/logwatch.py)
SESSION_LOG = SessionLog()


def _dump_tasks(signum: int, frame: object) -> None:
    """`kill -USR1 <pytest pid>`: where every asyncio task of a stuck run is waiting (a
    thread dump shows only the event loop's select), written to
    `<tmp>/joinedup-tasks-<pid>.txt` and to stderr, where pytest-timeout shows it as the
    test's captured stderr when the test runs out of time (`_tasks_before_the_timeout`)."""
    loop = asyncio.events._get_running_loop()
    tasks = asyncio.all_tasks(loop) if loop is not None else set()
    path = Path(tempfile.gettempdir()) / f"joinedup-tasks-{os.getpid()}.txt"
    with path.open("w") as out:
        for task in tasks:
            task.print_stack(file=out)
        out.flush()
        faulthandler.dump_traceback(file=out)
    sys.stderr.write(f"asyncio tasks of the stuck test:\n{path.read_text()}")
    sys.stderr.flush()


signal.signal(signal.SIGUSR1, _dump_tasks)
_TASK_DUMP = pytest.StashKey[threading.Timer]()


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """A test that hangs is ended by pytest-timeout (pyproject.toml), which prints every
    thread's stack: for an asyncio test only the loop's select. The tasks are dumped a little
    before (returning None lets pytest-timeout set its own timer)."""
    if settings.timeout and settings.timeout > 30:
        timer = threading.Timer(settings.timeout - 20, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.daemon = True
        timer.start()
        item.stash[_TASK_DUMP] = timer


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    timer = item.stash.get(_TASK_DUMP, None)
    if timer is not None:
        timer.cancel()



@pytest.fixture(scope="session", autouse=True)
def _production_logging() -> None:
    """structlog through the standard library as in every joinedup process, with the
    session's log watch in place of the stderr handler (pytest still captures records)."""
    configure_logging("INFO", json=True)
    logging.getLogger().handlers = [SESSION_LOG]


@pytest.fixture(autouse=True)
def _log_watch() -> None:
    """Back in place for every test (a test that configures logging replaces it)."""
    root = logging.getLogger()
    if SESSION_LOG not in root.handlers:
        root.addHandler(SESSION_LOG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any log line of it held an identifier value (named by scheme and
    logger, never the value)."""
    if not SESSION_LOG.findings:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"{f.logger} {f.level}: {', '.join(f.schemes)}" for f in SESSION_LOG.findings]
    message = (f"{len(lines)} of {SESSION_LOG.records} log records held identifier values:\n"
               + "\n".join(lines[:50]))
    if reporter is not None:
        reporter.write_line(message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@dataclass
class Servers:
    database_url: str
    bootstrap: str
    broker: EmbeddedBroker | None


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root: Path = tmp_path_factory.mktemp("stack")
    postgres = broker = None
    database_url = os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not database_url:
        postgres = EmbeddedPostgres(root / "pg" / "data", durable=False)
        database_url = postgres.start()
    if not bootstrap:
        broker = EmbeddedBroker(root / "tansu.log")
        bootstrap = broker.start()
    try:
        yield Servers(database_url, bootstrap, broker)
    finally:
        if broker:
            broker.stop()
        if postgres:
            postgres.stop()


def make_settings(servers: Servers, **overrides: object) -> Settings:
    tag = uuid.uuid4().hex[:10]
    values: dict[str, object] = {
        "environment": "test",
        "database_url": servers.database_url,
        "kafka_bootstrap": servers.bootstrap,
        "db_schema": f"t_{tag}",
        "topic_prefix": f"t{tag}",
        "processor_group": f"g{tag}",
        "kafka_session_timeout_ms": 6000,
        "kafka_heartbeat_interval_ms": 500,
        "batch_wait_ms": 20,
        # Admission subscribes to agency topics by pattern: see new ones within a second.
        "kafka_metadata_max_age_ms": 1000,
        "log_json": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(servers: Servers) -> Settings:
    return make_settings(servers)


@pytest.fixture
async def migrated(settings: Settings) -> Settings:
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    return settings


@pytest.fixture
async def pool(migrated: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(migrated, max_size=5)
    try:
        yield pool
    finally:
        await pool.close()
