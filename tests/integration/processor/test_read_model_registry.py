"""The read-model registry on real PostgreSQL: a read model added as one more entry (its fold
and its store) is applied with the others in the batch's transaction, without touching the
pipeline; and a batch that fails leaves none of them written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import asyncpg
import pytest

from services.alerts.events import AlertEvent
from services.common.events import PAYLOAD_BY_FAMILY, AgencyEvent
from services.processor.adapters.store import Received
from services.processor.read_models import ReadModel, Registry, read_models
from tests import factories as f

# A test-only read model: how many events each agency has published.
CREATE = "CREATE TABLE agency_tally (agency text PRIMARY KEY, events int NOT NULL)"
SELECT = "SELECT agency, events FROM agency_tally WHERE agency = ANY($1::text[])"
UPSERT = """
INSERT INTO agency_tally (agency, events) SELECT * FROM unnest($1::text[], $2::int[])
ON CONFLICT (agency) DO UPDATE SET events = EXCLUDED.events
"""


def count(state: int | None, event: AgencyEvent) -> tuple[int, list[str]]:
    return (state or 0) + 1, [event.event_id]


class TallyStore:
    lock = None

    async def load(self, conn: asyncpg.Connection, keys: Sequence[str],
                   batch: Sequence[Received]) -> dict[str, int]:
        return {r["agency"]: r["events"] for r in await conn.fetch(SELECT, list(keys))}

    async def save(self, conn: asyncpg.Connection, states: Mapping[str, int | None],
                   changes: Sequence[str], batch: Sequence[Received]) -> Sequence[AlertEvent]:
        await conn.execute(UPSERT, list(states), [states[k] or 0 for k in states])
        return ()

    def committed(self) -> None:
        pass

    def rolled_back(self) -> None:
        pass


def tally() -> ReadModel[str, int, str]:
    return ReadModel("agency-tally", dict.fromkeys(PAYLOAD_BY_FAMILY, count),
                     lambda e: e.source.agency, TallyStore())


def _received(events: list[AgencyEvent], first: int = 0) -> list[Received]:
    return [Received(e, b"", "person-events", 0, first + i) for i, e in enumerate(events)]


async def test_a_new_entry_is_applied_with_the_others(pool: asyncpg.Pool) -> None:
    registry = Registry([*read_models().models, tally()])
    await pool.execute(CREATE)
    first = [f.referral("made", source="PRISON"), f.referral("accepted", source="HOUSING")]
    second = [f.contact("attended", source="HOUSING", at=f.T0 + timedelta(days=1))]
    for offset, events in ((0, first), (2, second)):
        async with pool.acquire() as conn, conn.transaction():
            assert await registry.apply(conn, _received(events, offset)) == []
        registry.committed()
    tallies = dict(await pool.fetch("SELECT agency, events FROM agency_tally"))
    assert tallies == {"hmp-leeds": 1, "leeds-housing": 2}
    assert await pool.fetchval("SELECT count(*) FROM timeline_entry") == 3
    assert await pool.fetchval("SELECT status FROM referral") == "accepted"


async def test_a_failing_read_model_leaves_none_written(pool: asyncpg.Pool) -> None:
    def broken(state: None, event: AgencyEvent) -> tuple[None, list[str]]:
        raise RuntimeError("a bug in one fold")

    registry = Registry([*read_models().models,
                         ReadModel("broken", {"contact.attended": broken}, lambda e: None,
                                   TallyStore())])
    await pool.execute(CREATE)
    events = [f.referral("made", source="PRISON"), f.contact("attended", source="HOUSING")]
    with pytest.raises(RuntimeError, match="a bug in one fold"):
        async with pool.acquire() as conn, conn.transaction():
            await registry.apply(conn, _received(events))
    registry.rolled_back()
    assert await pool.fetchval("SELECT count(*) FROM timeline_entry") == 0
    assert await pool.fetchval("SELECT count(*) FROM referral") == 0
    assert await pool.fetchval("SELECT count(*) FROM person_identifier") == 0
