"""The idempotency record in PostgreSQL: claim event ids, then mark them accepted or release them.

Every call is one statement on a pooled connection in autocommit: no transaction and no lock
outlive a statement, so a slow broker never holds a database connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from projections.queries import ingest as q
from services.common.db import BoundedPool
from services.ingest.adapters.publisher import Delivery


@dataclass(frozen=True, slots=True)
class Receipt:
    event_id: str
    content_hash: str
    accepted: bool  # False: a request holds a claim on the id
    stale: bool     # a claim whose request died (older than stale_after): take_over may take it
    partition: int | None
    offset: int | None


@dataclass(frozen=True, slots=True)
class Claim:
    event_id: str
    agency_id: str
    content_hash: str


async def claim(pool: BoundedPool, claims: Sequence[Claim]) -> dict[str, datetime]:
    """The new ids this request now holds -> the claim's token."""
    rows = await pool.fetch(q.CLAIM_EVENT_IDS, [c.event_id for c in claims],
                            [c.agency_id for c in claims], [c.content_hash for c in claims])
    return {r["event_id"]: r["claimed_at"] for r in rows}


async def take_over(pool: BoundedPool, claims: Sequence[Claim], stale_after: float
                    ) -> dict[str, datetime]:
    """The stale claims of the same content this request now holds -> the new token."""
    rows = await pool.fetch(q.TAKE_OVER_CLAIMS, [c.event_id for c in claims],
                            [c.content_hash for c in claims], stale_after)
    return {r["event_id"]: r["claimed_at"] for r in rows}


async def receipts_for(pool: BoundedPool, event_ids: Sequence[str], stale_after: float
                       ) -> dict[str, Receipt]:
    rows = await pool.fetch(q.SELECT_RECEIPTS, list(event_ids), stale_after)
    return {r["event_id"]: Receipt(r["event_id"], r["content_hash"], r["state"] == "accepted",
                                   r["stale"], r["kafka_partition"], r["kafka_offset"])
            for r in rows}


async def accept(pool: BoundedPool, accepted: Sequence[tuple[str, datetime, Delivery]]
                 ) -> None:
    """Mark held claims accepted, with where the broker put each event."""
    if accepted:
        await pool.execute(q.CLAIM_ACCEPTED, [a[0] for a in accepted], [a[1] for a in accepted],
                           [a[2].topic for a in accepted], [a[2].partition for a in accepted],
                           [a[2].offset for a in accepted])


async def release(pool: BoundedPool, released: Sequence[tuple[str, datetime]]) -> None:
    """Give back held claims whose events the broker did not acknowledge."""
    if released:
        await pool.execute(q.CLAIM_RELEASED, [r[0] for r in released], [r[1] for r in released])
