"""The HMPPS event types joinedup received but has no mapping for: read from the dead
letters they are parked as (the messages themselves stay on the dead-letter topic, where
`joinedup dead-letters redrive` sends them back once the mapping knows the type)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.queries import hmpps as q
from services.ingest.formats.hmpps.intake import STAGE


@dataclass(frozen=True, slots=True)
class UnmappedType:
    agency: str
    event_type: str
    count: int
    first_parked: datetime
    last_parked: datetime
    newest_ids: tuple[int, ...]


async def unmapped_types(pool: Any) -> list[UnmappedType]:
    """``pool``: an asyncpg pool or connection."""
    rows = await pool.fetch(q.UNMAPPED_TYPES, STAGE.name)
    return [UnmappedType(r["agency"] or "", r["event_type"], r["seen"], r["first_parked"],
                         r["last_parked"], tuple(r["newest_ids"])) for r in rows]
