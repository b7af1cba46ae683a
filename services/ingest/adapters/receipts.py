"""The idempotency record in PostgreSQL: claim event ids, then mark them accepted or release them.

Every call is one statement on a pooled connection in autocommit: no transaction and no lock
outlive a statement, so a slow broker never holds a database connection. Receipts belong to
an agency: event ids are unique within the agency that chose them, not across agencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from projections.queries import ingest as q
from projections.queries import sealing as sealing_sql
from services.common.db import BoundedPool
from services.common.serde.sealing import new_key, transit_context, unwrap, wrap
from services.ingest.adapters.publisher import Delivery


@dataclass(frozen=True, slots=True)
class Receipt:
    event_id: str
    content_hash: str
    accepted: bool  # False: a request holds a claim on the id
    stale: bool     # a claim whose request died (older than stale_after): take_over may take it
    topic: str | None
    partition: int | None
    offset: int | None


@dataclass(frozen=True, slots=True)
class Claim:
    event_id: str
    content_hash: str


async def claim(pool: BoundedPool, agency_id: str, claims: Sequence[Claim]
                ) -> dict[str, datetime]:
    """The new ids this request now holds -> the claim's token."""
    rows = await pool.fetch(q.CLAIM_EVENT_IDS, agency_id, [c.event_id for c in claims],
                            [c.content_hash for c in claims])
    return {r["event_id"]: r["claimed_at"] for r in rows}


async def take_over(pool: BoundedPool, agency_id: str, claims: Sequence[Claim],
                    stale_after: float) -> dict[str, datetime]:
    """The stale claims of the same content this request now holds -> the new token."""
    rows = await pool.fetch(q.TAKE_OVER_CLAIMS, agency_id, [c.event_id for c in claims],
                            [c.content_hash for c in claims], stale_after)
    return {r["event_id"]: r["claimed_at"] for r in rows}


async def receipts_for(pool: BoundedPool, agency_id: str, event_ids: Sequence[str],
                       stale_after: float) -> dict[str, Receipt]:
    rows = await pool.fetch(q.SELECT_RECEIPTS, agency_id, list(event_ids), stale_after)
    return {r["event_id"]: Receipt(r["event_id"], r["content_hash"], r["state"] == "accepted",
                                   r["stale"], r["kafka_topic"], r["kafka_partition"],
                                   r["kafka_offset"])
            for r in rows}


async def accept(pool: BoundedPool, agency_id: str,
                 accepted: Sequence[tuple[str, datetime, Delivery]]) -> None:
    """Mark held claims accepted, with where the broker put each event."""
    if accepted:
        await pool.execute(q.CLAIM_ACCEPTED, agency_id, [a[0] for a in accepted],
                           [a[1] for a in accepted], [a[2].topic for a in accepted],
                           [a[2].partition for a in accepted], [a[2].offset for a in accepted])


async def release(pool: BoundedPool, agency_id: str,
                  released: Sequence[tuple[str, datetime]]) -> None:
    """Give back held claims whose events the broker did not acknowledge."""
    if released:
        await pool.execute(q.CLAIM_RELEASED, agency_id, [r[0] for r in released],
                           [r[1] for r in released])


async def claim_again(pool: BoundedPool, agency_id: str, receipts: Sequence[Receipt]
                      ) -> dict[str, datetime]:
    """Accepted receipts whose records are not on the log any more, claimed again by this
    request (only where the receipt still points where it did) -> the claim's token."""
    if not receipts:
        return {}
    rows = await pool.fetch(q.CLAIM_AGAIN, agency_id, [r.event_id for r in receipts],
                            [r.topic for r in receipts], [r.partition for r in receipts],
                            [r.offset for r in receipts])
    return {r["event_id"]: r["claimed_at"] for r in rows}


async def transit_keys(pool: BoundedPool, agency_id: str, event_ids: Sequence[str],
                       key_encryption_key: bytes) -> dict[str, bytes]:
    """The key each event is sealed with on its way over the agency's topic (its receipt
    keeps it, wrapped, until admission has sealed the event for its person). Held claims
    only: an id missing from the answer is no longer this request's."""
    if not event_ids:
        return {}
    contexts = [transit_context(agency_id, e) for e in event_ids]
    fresh = [wrap(new_key(), key_encryption_key, c) for c in contexts]
    rows = await pool.fetch(sealing_sql.HOLD_TRANSIT_KEYS, agency_id, list(event_ids), fresh)
    return {r["event_id"]: unwrap(bytes(r["transit_key"]), key_encryption_key,
                                  transit_context(agency_id, r["event_id"])) for r in rows}
