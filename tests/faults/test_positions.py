"""Positions only move from exactly where they are stored: a failed batch followed by a
failed re-seek cannot let the consumer carry on and record a gap (100 of 600 events were
lost that way before)."""

from __future__ import annotations

import random

import asyncpg
import pytest

from services.common import positions
from services.common.identifiers import make_nhs_number
from services.common.positions import Move, PositionConflict
from services.common.settings import Settings
from services.processor.adapters import store
from tests.factories import contact
from tests.faults.conftest import FAST_RETRY, counts, start_in_process, wait_until
from tests.integration.processor.conftest import publish

pytestmark = pytest.mark.faults


def people_events(n: int, seed: int = 3) -> list:
    rng = random.Random(seed)
    return [contact("follow_up", contact_id=f"c-{i}", nhs=make_nhs_number(rng))
            for i in range(n)]


async def test_a_failed_batch_then_failed_reseeks_lose_nothing(
        migrated: Settings, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = migrated.model_copy(update={"batch_max_events": 100, **FAST_RETRY})
    events = people_events(600)
    await publish(settings, events)

    real_archive, real_load = store.archive, positions.load
    faults = {"archive": 0, "load": 0}

    async def archive_failing_once(conn, batch, opener=None):  # type: ignore[no-untyped-def]
        faults["archive"] += 1
        if faults["archive"] == 2:   # the second batch: the database "goes away"
            raise ConnectionResetError("injected")
        return await real_archive(conn, batch, opener)

    async def load_failing_after_the_fault(conn, consumer, topics):  # type: ignore[no-untyped-def]
        if (consumer == settings.processor_group and faults["archive"] >= 2
                and faults["load"] < 3):  # ...and stays away for the intake's next 3 re-seeks
            faults["load"] += 1
            raise ConnectionRefusedError("injected")
        return await real_load(conn, consumer, topics)

    monkeypatch.setattr(store, "archive", archive_failing_once)
    monkeypatch.setattr(positions, "load", load_failing_after_the_fault)
    running = await start_in_process(settings, rules=False)
    try:
        async def all_archived() -> bool:
            return (await counts(pool))["archive"] >= len(events)
        await wait_until(all_archived, 90)
        tracked = await pool.fetchval(
            "SELECT sum(next_offset) FROM consumer_position WHERE consumer = $1",
            settings.processor_group)
    finally:
        await running.stop()
    assert faults["load"] == 3, "the re-seek must have failed three times"
    assert faults["archive"] > 6, "the failed batch must have been retried"
    found = await counts(pool)
    assert found["archive"] == found["timeline"] == found["distinct_timeline"] == len(events)
    assert tracked == len(events)
    print(f"\n[figures] failed batch then {faults['load']} failed re-seeks: {len(events)} "
          f"published, {found['archive']} archived, 0 lost (100 of 600 before), 0 doubled")


async def test_a_batch_that_does_not_start_at_the_stored_position_is_refused(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    topic = migrated.topics.person_events
    await positions.start(pool, "c", {(topic, 0): 0})
    async with pool.acquire() as conn, conn.transaction():
        await positions.advance(conn, "c", [Move(topic, 0, 0, 10, b"a" * 16)])
    for start in (0, 9, 11):  # behind, just behind, ahead: all refused, nothing recorded
        with pytest.raises(PositionConflict):
            async with pool.acquire() as conn, conn.transaction():
                await positions.advance(conn, "c", [Move(topic, 0, start, start + 5,
                                                         b"b" * 16)])
    [row] = (await positions.load(pool, "c", [topic])).values()
    assert (row.next_offset, row.anchor) == (10, b"a" * 16)
