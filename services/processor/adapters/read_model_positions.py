"""Positions per read model at the asyncpg edge (see projections/queries/read_models.py).

The live pipeline asks, inside its batch transaction, which read models are in step on each
partition of the batch (their stored position is where the batch starts; a live read model
with no row yet is in step), applies only those, and moves their positions to the batch's
end. A read model that is catching up from the archive is left out until it has caught up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import structlog

from projections.queries import read_models as sql
from services.common.positions import Move

log = structlog.get_logger("joinedup.read_models")

LIVE = "live"
CATCHING_UP = "catching-up"

#: read model name -> the (topic, partition) pairs of the batch it is in step on
InStep = dict[str, set[tuple[str, int]]]


@dataclass
class Steps:
    in_step: InStep
    generations: dict[str, int]  # bumped when a read model's tables were replaced


async def register(pool: asyncpg.Pool, names: Sequence[str]) -> dict[str, str]:
    """Record read models seen for the first time: live on an empty archive, otherwise
    catching up (history exists that they have not seen). Returns every one's status."""
    async with pool.acquire() as tx, tx.transaction():
        empty = await tx.fetchval(sql.ARCHIVE_IS_EMPTY)
        for name in names:
            await tx.execute(sql.REGISTER, name, LIVE if empty else CATCHING_UP)
        rows = await tx.fetch(sql.REGISTERED, list(names))
    return {r["name"]: r["status"] for r in rows}


async def in_step(conn: asyncpg.Connection, names: Sequence[str], moves: Sequence[Move]
                  ) -> Steps:
    """Lock and read the positions the batch's moves concern; who is in step where."""
    registered = await conn.fetch(sql.LOCK_STATUSES, list(names))
    statuses = {r["name"]: r["status"] for r in registered}
    keys = sorted({(m.topic, m.partition) for m in moves})
    rows = await conn.fetch(sql.LOCK_POSITIONS, list(names), [t for t, _ in keys],
                            [p for _, p in keys])
    stored = {(r["read_model"], r["topic"], r["partition"]): r["next_offset"] for r in rows}
    found: InStep = {}
    for name in names:
        live = statuses.get(name, LIVE) == LIVE
        found[name] = set()
        for move in moves:
            key = (name, move.topic, move.partition)
            if (key not in stored and live) or stored.get(key) == move.start:
                found[name].add((move.topic, move.partition))
            elif live and stored.get(key) is not None:  # nothing should ever leave it so
                log.error("live read model out of step: its events are not applied",
                          read_model=name, topic=move.topic, partition=move.partition,
                          stored=stored[key], batch_start=move.start)
    return Steps(found, {r["name"]: r["generation"] for r in registered})


async def advance(conn: asyncpg.Connection, steps: InStep, moves: Sequence[Move]) -> None:
    rows = [(name, m.topic, m.partition, m.end) for name, pairs in steps.items()
            for m in moves if (m.topic, m.partition) in pairs]
    if rows:
        await conn.execute(sql.ADVANCE, *(list(column) for column in zip(*rows, strict=True)))


@dataclass(frozen=True, slots=True)
class Position:
    topic: str
    partition: int
    next_offset: int | None
    archive_seq: int


async def positions(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> list[Position]:
    return [Position(r["topic"], r["partition"], r["next_offset"], r["archive_seq"])
            for r in await conn.fetch(sql.POSITIONS, name)]
