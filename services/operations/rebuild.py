"""`joinedup rebuild`: read models rebuilt from the event archive into a shadow schema while
the live ones keep serving, then compared with them (`--check`).

The shadow schema holds copies (``LIKE ... INCLUDING ALL``) of the rebuilt read models'
tables and its own ``read_model``/``read_model_position``; its connections search the shadow
schema first and the live one second, so the archive and the consumer's positions are read
from the live schema and every write lands in the shadow. The rebuild is the catch-up of
``services/processor/catch_up.py`` run there: partition by partition, each batch in one
transaction with its position, so a rebuild that is killed resumes where it stopped. The
alert outbox it fills is the shadow's own and nothing publishes it: a rebuild raises no
side effects. With the rules, a final deadline sweep fires what the live timer would have
fired by now, and the duty teams' work on alerts (not in the archive) is carried over from
the live alert history (``services/alerts/carry_over.py``).

With ``workers`` > 1 the partitions are shared out over that many processes (disjoint sets,
p % n); the process that started them then finishes what is left and turns the read models
live. `--switch` then makes the rebuilt tables the live ones in one transaction (see
``Rebuild.switch``).

``source="log"`` rebuilds from the Kafka log instead of the archive (see
``services/processor/sources.py``): the shadow then gets its own ``event_archive``, which the
log's batches fill as the live pipeline's did (telling new events from copies), and
``--check`` compares it with the live archive too. A shadow is built from one source: a
rebuild from the other refuses it until it is dropped.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from projections.queries import read_models as positions_sql
from projections.queries import rebuild as sql
from services.alerts.carry_over import carry_over_duty_work
from services.common.db import create_pool
from services.common.settings import Settings
from services.identity.key_ring import KeyRing
from services.operations.dry_run import DryRun, dry_run
from services.operations.rebuild_progress import serve_progress
from services.processor.adapters.store import prepare_connection
from services.processor.bootstrap import load_pack
from services.processor.catch_up import CatchUp
from services.processor.clock import WallClock
from services.processor.opening import Opener
from services.processor.read_models import Registry, read_models
from services.processor.rules_stage import DeadlineWatch, RuleStage
from services.processor.sources import ArchiveSource, LogSource, Source

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: columns that say when a row was written, not what it holds
VOLATILE = frozenset({"projected_at", "updated_at", "archived_at"})
#: tables of a read model that are queues, not state: not compared
QUEUES = frozenset({"alert_outbox"})
#: where a rebuild reads: the event archive (dependable) or the Kafka log
SOURCES = ("archive", "log")
#: the archive's columns that say where and when it was written, not what came
ARCHIVE_VOLATILE = frozenset({"seq", "archived_at"})


def quoted(name: str) -> str:
    """A schema or table name, checked and quoted. Identifiers cannot be bound parameters;
    these come from the settings and the registry, and are checked all the same."""
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f'"{name}"'


def _die_with_parent() -> None:
    """On Linux the kernel kills this process the moment its parent dies (a killed rebuild
    leaves no process behind still writing); elsewhere the parent is polled (run_share)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


class _NoPublishing:
    async def publish(self) -> int:
        return 0


@dataclass
class Difference:
    read_model: str
    table: str
    only_live: int
    only_shadow: int


@dataclass
class Rebuild:
    settings: Settings
    names: Sequence[str] = ()          # empty: every read model
    shadow: str = ""
    batch_size: int = 2000
    console: Console = field(default_factory=Console)
    workers: int = 1                   # processes, over disjoint sets of partitions
    source: str = "archive"            # or "log"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r} (known: {', '.join(SOURCES)})")
        self.shadow = self.shadow or f"{self.settings.db_schema}_rebuild"
        if self.shadow == self.settings.db_schema:
            raise ValueError("the shadow schema must not be the live one")
        quoted(self.shadow)
        self.stage = RuleStage(load_pack(self.settings))
        everything = read_models(self.stage)
        self.opener = Opener(KeyRing(self.settings.key_encryption_key()))
        self.registry: Registry = everything.only(self.names) if self.names else everything

    async def run(self) -> int:
        """Build (or resume building) the shadow; returns the events applied this run
        (summed over the read models: one event rebuilt into five counts five)."""
        await self._prepare()
        pool = await self._shadow_pool()
        served = await serve_progress(  # for Prometheus (JOINEDUP_REBUILD_METRICS_PORT)
            self.settings, self.registry.names, lambda names: self._progress_so_far(pool, names))
        try:
            total, done = await self._progress_so_far(pool)
            with Progress(TextColumn("[bold]rebuild[/bold] {task.description}"), BarColumn(),
                          TextColumn("{task.completed:,.0f}/{task.total:,.0f} events"),
                          TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                          console=self.console, transient=False) as progress:
                task = progress.add_task(", ".join(self.registry.names), total=total,
                                         completed=done, rate="")

                def advanced(name: str, events: int) -> None:
                    progress.advance(task, events)
                    speed = progress.tasks[task].speed
                    progress.update(task, rate=f"{speed:,.0f} events/s" if speed else "")

                if self.workers > 1:  # the partitions shared out, one process each
                    await self._in_processes(pool, progress, task)
                source = self._source()
                try:
                    await CatchUp(pool, self.registry, self.settings.processor_group,
                                  self.settings.topics.person_events, self.batch_size,
                                  on_progress=advanced, source=source,
                                  opener=self.opener).run()
                finally:
                    await source.close()
            _, finished = await self._progress_so_far(pool)
            applied = finished - done
            if "rules" in self.registry.names:
                await self._sweep_deadlines(pool)
                async with pool.acquire() as conn:
                    await carry_over_duty_work(conn, quoted(self.settings.db_schema))
        finally:
            await served.close()
            await pool.close()
        return applied

    async def run_share(self, share: tuple[int, int]) -> int:
        """One of ``workers`` processes: the partitions p % n == i, until done or until the
        process that started it is gone (killed: the next run resumes). The parent is
        polled too: it may have died before the kernel was told to kill this one with it."""
        parent, stopping = os.getppid(), asyncio.Event()
        _die_with_parent()

        async def watch_parent() -> None:
            # A parent's death has no event to wait on: polled.
            while os.getppid() == parent:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
            stopping.set()

        watcher = asyncio.create_task(watch_parent())
        pool = await self._shadow_pool()
        source = self._source()
        try:
            return await CatchUp(pool, self.registry, self.settings.processor_group,
                                 self.settings.topics.person_events, self.batch_size,
                                 share=share, source=source, opener=self.opener).run(stopping)
        finally:
            watcher.cancel()
            await source.close()
            await pool.close()

    async def _in_processes(self, pool: asyncpg.Pool, progress: Progress, task: TaskID
                            ) -> None:
        children = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.operations.cli", "rebuild",
            "--read-models", ",".join(self.registry.names), "--shadow", self.shadow,
            "--batch-size", str(self.batch_size), "--share", f"{i}/{self.workers}",
            "--source", self.source,
            env=self._child_env(), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE) for i in range(self.workers)]
        waiting = [asyncio.create_task(child.communicate()) for child in children]
        while not all(w.done() for w in waiting):
            await asyncio.wait(waiting, timeout=0.5)
            _, done = await self._progress_so_far(pool)
            progress.update(task, completed=done)
            speed = progress.tasks[task].speed
            progress.update(task, rate=f"{speed:,.0f} events/s" if speed else "")
        failed = [(child.returncode, (await w)[1]) for child, w in zip(children, waiting,
                                                                         strict=True)
                  if child.returncode != 0]
        if failed:
            code, stderr = failed[0]
            raise RuntimeError(f"a rebuild process failed (exit {code}): "
                               f"{stderr.decode(errors='replace')[-2000:]}")

    def _child_env(self) -> dict[str, str]:
        s = self.settings
        env = {**os.environ, "DATABASE_URL": s.database_url or "",
               "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap or "",
               "JOINEDUP_DB_SCHEMA": s.db_schema, "JOINEDUP_TOPIC_PREFIX": s.topic_prefix,
               "JOINEDUP_PROCESSOR_GROUP": s.processor_group, "JOINEDUP_LOG_LEVEL": "WARNING"}
        if s.rule_pack is not None:
            env["JOINEDUP_RULE_PACK"] = str(s.rule_pack)
        return env

    async def check(self) -> list[Difference]:
        """Row differences between the live and the shadow tables, per read model."""
        live, shadow = quoted(self.settings.db_schema), quoted(self.shadow)
        found: list[Difference] = []
        conn = await self._connect()
        try:
            for model in self.registry.models:
                for table in model.tables:
                    if table in QUEUES:
                        continue
                    columns = [c for c in await _columns(conn, self.settings.db_schema, table)
                               if c not in VOLATILE]
                    found.append(Difference(
                        model.name, table,
                        await _only_in(conn, live, shadow, table, columns),
                        await _only_in(conn, shadow, live, table, columns)))
            if await self._shadow_has_archive(conn):  # rebuilt from the log
                columns = [c for c in await _columns(conn, self.settings.db_schema,
                                                     "event_archive")
                           if c not in ARCHIVE_VOLATILE]
                found.append(Difference(
                    "archive", "event_archive",
                    await _only_in(conn, live, shadow, "event_archive", columns),
                    await _only_in(conn, shadow, live, "event_archive", columns)))
        finally:
            await conn.close()
        return found

    async def dry_run(self) -> DryRun:
        """Every chosen read model folded over the archive in memory: nothing written."""
        pool = await create_pool(self.settings, max_size=1)
        try:
            grace = timedelta(seconds=self.settings.deadline_grace_seconds)
            return await dry_run(pool, self.registry, self.settings.topics.person_events,
                                 self.stage.pack, datetime.now(UTC) - grace, self.opener,
                                 self.batch_size)
        finally:
            await pool.close()

    async def switch(self) -> str:
        """Make the rebuilt tables the live ones, atomically; returns the schema the replaced
        tables were moved to (kept for inspection; drop it when satisfied).

        In one transaction: the live read models' rows are locked, which holds the live
        pipeline still (its batches take them first); the shadow catches up the last events
        inside that transaction; then each of its tables takes the place of the live one,
        its positions become the live positions and the read models' generation goes up, so
        every worker drops what it cached of them before its next batch. The outbox is a
        queue, not state: the live one stays (the shadow's is dropped unpublished)."""
        live, shadow = self.settings.db_schema, self.shadow
        replaced = f"{live}_replaced_{datetime.now(UTC):%Y%m%d%H%M%S}"
        names = list(self.registry.names)
        tables = [t for m in self.registry.models for t in m.tables if t not in QUEUES]
        conn = await self._connect()
        pool = await self._shadow_pool()  # the catch-up's; inside, only `conn` is used
        source = self._source()
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path = {quoted(live)}")
                await conn.fetch(sql.HOLD_LIVE, names)
                await conn.execute(
                    f"SET LOCAL search_path = {quoted(shadow)}, {quoted(live)}")
                if self.source == "log":  # the last events go through the shadow's archive
                    await prepare_connection(conn)
                await conn.execute(sql.CATCH_UP_AGAIN, names)
                runner = CatchUp(pool, self.registry, self.settings.processor_group,
                                 self.settings.topics.person_events, self.batch_size,
                                 source=source, opener=self.opener)
                self.stage.drop_cached()
                await runner.finish_within(conn, names)
                if "rules" in names:  # the duty teams' work up to now, and none meanwhile
                    await conn.execute(sql.HOLD_LIVE_ALERTS.format(live=quoted(live)))
                    await carry_over_duty_work(conn, quoted(live))
                for name in names:
                    if await conn.fetchval(positions_sql.IN_STEP_EVERYWHERE, name,
                                           self.settings.processor_group,
                                           self.settings.topics.person_events) is False:
                        raise RuntimeError(f"{name} is not in step after catching up")
                await conn.execute(f"SET LOCAL search_path = {quoted(live)}")
                await conn.execute(f"CREATE SCHEMA {quoted(replaced)}")
                for table in tables:
                    await conn.execute(f"ALTER TABLE {quoted(live)}.{quoted(table)} "
                                       f"SET SCHEMA {quoted(replaced)}")
                    await conn.execute(f"ALTER TABLE {quoted(shadow)}.{quoted(table)} "
                                       f"SET SCHEMA {quoted(live)}")
                await conn.execute(sql.FORGET_LIVE_POSITIONS, names)
                await conn.execute(
                    f"INSERT INTO read_model_position SELECT * FROM "
                    f"{quoted(shadow)}.read_model_position WHERE read_model = ANY($1::text[])",
                    names)
                await conn.execute(sql.NEW_GENERATION, names)
                await conn.execute(f"DROP SCHEMA {quoted(shadow)} CASCADE")
        finally:
            await source.close()
            await conn.close()
            await pool.close()
        return replaced

    async def drop(self) -> None:
        conn = await self._connect()
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quoted(self.shadow)} CASCADE")
        finally:
            await conn.close()

    # --- the shadow schema ---------------------------------------------------------------

    async def _prepare(self) -> None:
        """The shadow's tables (created once), and the read models to (re)build in it set to
        catching up: a finished rebuild run again takes in what the live ones applied since."""
        live, shadow = quoted(self.settings.db_schema), quoted(self.shadow)
        own = ("event_archive",) if self.source == "log" else ()
        conn = await self._connect()
        try:
            await self._refuse_other_source(conn)
            async with conn.transaction():
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {shadow}")
                for table in ("read_model", "read_model_position", *own,
                              *(t for m in self.registry.models for t in m.tables)):
                    await conn.execute(f"CREATE TABLE IF NOT EXISTS {shadow}.{quoted(table)} "
                                       f"(LIKE {live}.{quoted(table)} INCLUDING ALL)")
                await conn.execute(f"SET LOCAL search_path = {shadow}")
                await conn.execute(sql.CATCH_UP_AGAIN, list(self.registry.names))
        finally:
            await conn.close()

    async def _refuse_other_source(self, conn: asyncpg.Connection) -> None:
        """A shadow is built from one source; and the log must be the one applied."""
        has_archive = await self._shadow_has_archive(conn)
        if self.source == "archive" and has_archive:
            raise ValueError(f"the shadow {self.shadow} is being rebuilt from the log: "
                             f"go on with --source log, or --drop it first")
        if self.source == "log" and not has_archive and await conn.fetchval(
                sql.TABLE_EXISTS, f"{quoted(self.shadow)}.read_model_position"):
            await conn.execute(f"SET search_path = {quoted(self.shadow)}")
            started = await conn.fetchval(sql.ARCHIVE_PROGRESS)
            await conn.execute(f"SET search_path = {quoted(self.settings.db_schema)}")
            if started:
                raise ValueError(f"the shadow {self.shadow} is being rebuilt from the "
                                 f"archive: go on with --source archive, or --drop it first")
        if self.source == "log":
            await conn.execute(f"SET search_path = {quoted(self.settings.db_schema)}")
            replaced = await conn.fetchrow(positions_sql.LOG_REPLACED,
                                           self.settings.processor_group,
                                           self.settings.topics.person_events)
            if replaced is not None:
                raise ValueError(
                    f"the log of partition {replaced['partition']} was replaced "
                    f"({replaced['detected_at']:%Y-%m-%d %H:%M}): it no longer holds "
                    f"everything applied; rebuild from the archive")

    async def _shadow_has_archive(self, conn: asyncpg.Connection) -> bool:
        return bool(await conn.fetchval(sql.TABLE_EXISTS,
                                        f"{quoted(self.shadow)}.event_archive"))

    def _source(self) -> Source:
        topic = self.settings.topics.person_events
        if self.source == "log":
            return LogSource(topic, self.settings.processor_group, self.settings, self.opener)
        return ArchiveSource(topic, self.opener)

    async def _shadow_pool(self) -> asyncpg.Pool:
        """Connections that write the shadow; from the log, through its own archive (whose
        staging table each connection creates)."""
        return await create_pool(
            self.settings, max_size=2,
            init=prepare_connection if self.source == "log" else None,
            server_settings={
                "search_path": f"{quoted(self.shadow)}, {quoted(self.settings.db_schema)}"})

    async def _connect(self) -> asyncpg.Connection:
        database_url, _ = self.settings.require_servers()
        return await asyncpg.connect(database_url)

    async def _progress_so_far(self, pool: asyncpg.Pool, only: Sequence[str] = ()
                               ) -> tuple[int, int]:
        """(events to apply, events applied) over the read models (or `only` those):
        archived events, or log records when rebuilding from the log."""
        topic, names = self.settings.topics.person_events, list(only or self.registry.names)
        if self.source == "log":
            total = await pool.fetchval(sql.LOG_TOTAL, self.settings.processor_group, topic)
            done = await pool.fetchval(sql.LOG_REBUILT, topic, names)
        else:
            total = await pool.fetchval(sql.ARCHIVED, topic)
            done = await pool.fetchval(sql.REBUILT, topic, names)
        return int(total) * len(names), int(done or 0)

    async def _sweep_deadlines(self, pool: asyncpg.Pool) -> None:
        partitions = [r["partition"] for r in await pool.fetch(
            sql.PARTITIONS, self.settings.processor_group, self.settings.topics.person_events)]
        sweep = DeadlineWatch(pool, self.stage, WallClock(), _NoPublishing(),
                              lambda: partitions, topic=self.settings.topics.person_events,
                              grace=timedelta(seconds=self.settings.deadline_grace_seconds))
        fired = await sweep.tick()
        self.console.print(f"deadline sweep: {fired} expectation(s) past due fired")


async def _columns(conn: asyncpg.Connection, schema: str, table: str) -> list[str]:
    return [r["column_name"] for r in await conn.fetch(sql.COLUMNS, schema, table)]


async def _only_in(conn: asyncpg.Connection, schema: str, other: str, table: str,
                   columns: Sequence[str]) -> int:
    """Rows of ``schema.table`` with no equal row in ``other.table`` (counted with repeats)."""
    listed = ", ".join(quoted(c) for c in columns)
    t = quoted(table)  # every identifier here is checked by quoted()
    return int(await conn.fetchval(f"SELECT count(*) FROM (SELECT {listed} FROM {schema}.{t} "
                                   f"EXCEPT ALL SELECT {listed} FROM {other}.{t}) AS d"))
