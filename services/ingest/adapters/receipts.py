"""The idempotency record in PostgreSQL: advisory locks on event ids and the receipts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from projections.queries import ingest as q
from services.ingest.adapters.publisher import Delivery


@dataclass(frozen=True, slots=True)
class Receipt:
    event_id: str
    content_hash: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class NewReceipt:
    event_id: str
    agency_id: str
    content_hash: str
    delivery: Delivery


async def lock_event_ids(conn: asyncpg.Connection, event_ids: Sequence[str]) -> None:
    """Hold a lock per event id until the transaction ends (call inside a transaction)."""
    await conn.fetchval(q.LOCK_EVENT_IDS, list(event_ids))


async def receipts_for(conn: asyncpg.Connection, event_ids: Sequence[str]) -> dict[str, Receipt]:
    rows = await conn.fetch(q.SELECT_RECEIPTS, list(event_ids))
    return {r["event_id"]: Receipt(r["event_id"], r["content_hash"], r["kafka_partition"],
                                   r["kafka_offset"]) for r in rows}


async def record_receipts(conn: asyncpg.Connection, receipts: Sequence[NewReceipt]) -> None:
    if not receipts:
        return
    await conn.execute(
        q.INSERT_RECEIPTS, [r.event_id for r in receipts], [r.agency_id for r in receipts],
        [r.content_hash for r in receipts], [r.delivery.topic for r in receipts],
        [r.delivery.partition for r in receipts], [r.delivery.offset for r in receipts])
