"""A read model added to a running system catches up from the event archive (or the Kafka
log), then joins the live pipeline, partition by partition, without stopping it or touching
the other read models.

The source (``services/processor/sources.py``) gives a partition's events in the order the
live pipeline applied them. For each partition the catching-up read model applies them after
its own position in batches, each in one transaction with its position. When nothing
is left it takes the consumer's position, holding the consumer's row so the live pipeline
cannot move meanwhile: from there on the live pipeline finds it in step and applies it. When
it is in step everywhere it turns 'live', which waits for live batches in flight (they hold
its ``read_model`` row), so no batch can slip between the archive and the live pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import asyncpg
import structlog

from projections.queries import read_models as sql
from services.common.backoff import Backoff
from services.common.health import Health
from services.processor.adapters import read_model_positions
from services.processor.adapters.read_model_positions import CATCHING_UP
from services.processor.opening import Opener
from services.processor.pipeline import retryable
from services.processor.read_models import Registry
from services.processor.sources import ArchiveSource, Source

log = structlog.get_logger("joinedup.catch_up")


class CatchUp:
    """Brings the read models registered as catching up to the live pipeline's position."""

    def __init__(self, pool: asyncpg.Pool, registry: Registry, consumer: str, topic: str,
                 batch_size: int = 2000,
                 on_progress: Callable[[str, int], None] | None = None,
                 share: tuple[int, int] | None = None, source: Source | None = None, *,
                 opener: Opener) -> None:
        """``share`` = (i, n): only the partitions p with p % n == i, and no turning live
        (one of n processes of a rebuild; the one that started them finishes the rest).
        ``source``: the archive unless given (the caller closes a source it gives);
        ``opener`` opens the archived events' sealed fields."""
        self._share = share
        self._pool = pool
        self._registry = registry
        self._consumer = consumer
        self._topic = topic
        self._source: Source = source or ArchiveSource(topic, opener)
        self._batch_size = batch_size
        self._on_progress = on_progress

    async def pending(self) -> list[str]:
        statuses = await read_model_positions.register(self._pool, self._registry.names)
        return [n for n in self._registry.names if statuses.get(n) == CATCHING_UP]

    async def run(self, stopping: asyncio.Event | None = None) -> int:
        """Catch every pending read model up, together (one read of the archive for all of
        them); returns the events applied, summed over the read models."""
        pending = await self.pending()
        return await self.catch_up(pending, stopping) if pending else 0

    async def keep_running(self, stopping: asyncio.Event, backoff: Backoff,
                           health: Health | None = None) -> int:
        """``run`` inside a worker: a failure of the servers (or a statement cancelled on a
        locked table) pauses the catch-up with backoff and it goes on from its positions,
        instead of ending the worker; the health report says it is waiting meanwhile. A bug
        still ends it (and the worker with it), loudly."""
        while not stopping.is_set():
            try:
                applied = await self.run(stopping)
            except Exception as exc:
                if not retryable(exc):  # the live pipeline's rules: servers, not messages
                    raise
                delay = backoff.next()
                log.warning("catching up paused; retrying", error=type(exc).__name__,
                            retry_in_seconds=round(delay, 2), failures=backoff.failures)
                if health is not None:
                    health.down("catch-up", f"waiting for the servers ({type(exc).__name__})")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                continue
            if health is not None:
                health.up("catch-up")
            return applied
        return 0

    async def catch_up(self, names: Sequence[str], stopping: asyncio.Event | None = None
                       ) -> int:
        together = Registry([self._registry[n] for n in names])
        left, applied = list(names), 0
        while left and (stopping is None or not stopping.is_set()):
            async with self._pool.acquire() as conn:
                partitions = [r["partition"] for r in await conn.fetch(
                    sql.PARTITIONS_TO_CATCH_UP, self._consumer, self._topic)]
            if self._share is not None:
                mine = [p for p in partitions if p % self._share[1] == self._share[0]]
                for partition in mine:
                    applied += await self._partition(together, left, partition, stopping)
                return applied
            for partition in partitions:
                applied += await self._partition(together, left, partition, stopping)
            for name in list(left):
                if await self._turn_live(name):
                    log.info("read model caught up and live", read_model=name)
                    left.remove(name)
        return applied

    async def _partition(self, together: Registry, names: Sequence[str], partition: int,
                         stopping: asyncio.Event | None) -> int:
        applied = 0
        async with self._pool.acquire() as conn:
            for name in names:
                await conn.execute(sql.START_CATCHING_UP, name, self._topic, partition)
        while stopping is None or not stopping.is_set():
            async with together.locked(), self._pool.acquire() as conn:
                try:
                    async with conn.transaction():
                        by_model, done = await self.step(conn, together, names, partition)
                except BaseException:
                    together.rolled_back()
                    raise
                together.committed()
            for name, events in by_model.items():
                applied += events
                if events and self._on_progress is not None:
                    self._on_progress(name, events)
            if done:
                return applied
        return applied

    async def step(self, conn: asyncpg.Connection, together: Registry, names: Sequence[str],
                   partition: int) -> tuple[dict[str, int], bool]:
        """One batch of a partition's archive for every read model behind there, in the
        caller's transaction: (events applied per read model, whether all are in step)."""
        behind: dict[str, int] = {}
        for name in names:
            row = await conn.fetchrow(sql.LOCK_POSITION, name, self._topic, partition)
            if row is not None and row["next_offset"] is None:
                behind[name] = self._source.position(row)
        if not behind:
            return {}, True
        if len(set(behind.values())) > 1 and not self._source.positions_may_differ:
            raise RuntimeError(f"partition {partition}: {', '.join(behind)} stand at "
                               f"different positions; catch them up from this source one "
                               f"at a time (or rebuild them afresh)")
        chunk = await self._source.read(conn, partition, min(behind.values()),
                                        self._batch_size)
        if chunk.reached is None:
            joined = [await self._join_live(conn, n, partition, position)
                      for n, position in behind.items()]
            return {}, all(joined)
        applied: dict[str, int] = {}
        for name, position in behind.items():
            # read models may stand at different positions (in the archive)
            mine = [r for p, r in chunk.events if p > position]
            if mine:
                await together[name].apply(conn, mine)
            if chunk.reached > position:
                await conn.execute(self._source.CAUGHT_UP, name, self._topic, partition,
                                   chunk.reached)
            applied[name] = len(mine)
        return applied, False

    async def finish_within(self, conn: asyncpg.Connection, names: Sequence[str]) -> int:
        """Catch ``names`` up on every partition inside the caller's transaction (which holds
        the live pipeline still): for switching rebuilt read models over."""
        together = Registry([self._registry[n] for n in names])
        applied = 0
        for row in await conn.fetch(sql.PARTITIONS_TO_CATCH_UP, self._consumer, self._topic):
            for name in names:
                await conn.execute(sql.START_CATCHING_UP, name, self._topic, row["partition"])
            done = False
            while not done:
                by_model, done = await self.step(conn, together, names, row["partition"])
                applied += sum(by_model.values())
        return applied

    async def _join_live(self, conn: asyncpg.Connection, name: str, partition: int,
                         position: int) -> bool:
        """Nothing left in the source: take the consumer's position, the consumer held.
        False when a live batch committed more before the lock (the next step reads it)."""
        consumer = await conn.fetchrow(sql.LOCK_CONSUMER, self._consumer, self._topic, partition)
        if await self._source.more(conn, partition, position,
                                   consumer["next_offset"] if consumer is not None else None):
            return False
        if consumer is None:  # never consumed here: in step by having no row once live
            await conn.execute(sql.FORGET_POSITION, name, self._topic, partition)
        else:
            await conn.execute(sql.JOIN_LIVE, name, self._topic, partition,
                               consumer["next_offset"])
        return True

    async def _turn_live(self, name: str) -> bool:
        """Live if it is in step on every partition the consumer tracks; False (and still
        catching up) when a partition moved or appeared meanwhile: another round then."""
        async with self._pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                turned = await conn.fetchval(sql.TURN_LIVE, name)
                in_step = await conn.fetchval(sql.IN_STEP_EVERYWHERE, name, self._consumer,
                                              self._topic)
            except BaseException:
                await tx.rollback()
                raise
            if turned is not None and in_step is False:
                await tx.rollback()
                return False
            await tx.commit()
            return True


async def catch_up(pool: asyncpg.Pool, registry: Registry, consumer: str, topic: str,
                   opener: Opener, names: Sequence[str] | None = None,
                   stopping: asyncio.Event | None = None) -> int:
    """Catch up the read models registered as catching up (or only those named)."""
    return await CatchUp(pool, registry if names is None else registry.only(names), consumer,
                         topic, opener=opener).run(stopping)
