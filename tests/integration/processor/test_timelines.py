"""1,000+ events for 100+ people from 4+ agencies, published out of order across agencies:
every timeline complete, ordered, without duplicates; republishing changes nothing."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime

from services.processor.bootstrap import Processor
from services.simulation import shuffle_across_agencies, simulate
from tests.integration.processor.conftest import publish, register_sources, wait_for

SNAPSHOT = """
SELECT person_key, array_agg(event_id::text ORDER BY occurred_at, recorded_at, event_id) AS ids
FROM timeline_entry GROUP BY person_key
"""
READ_MODELS = """
SELECT (SELECT count(*) FROM event_archive) AS archive,
       (SELECT count(*) FROM timeline_entry) AS timeline,
       (SELECT count(*) FROM referral) AS referrals,
       (SELECT count(*) FROM referral_history) AS history,
       (SELECT count(*) FROM caseload) AS caseload,
       (SELECT string_agg(referral_id || status, ',' ORDER BY referral_id) FROM referral) AS states,
       (SELECT string_agg(person_key || agency || active::text, ',' ORDER BY person_key, agency)
          FROM caseload) AS involvement
"""


async def test_out_of_order_population_gives_complete_ordered_timelines(
        running: Processor) -> None:
    events = simulate(seed=3, people=120, months=6, start=datetime(2026, 1, 5, tzinfo=UTC))
    people = {e.identifier_key for e in events}  # each simulated person's NHS number
    agencies = {e.source.agency for e in events}
    assert len(events) >= 1_000 and len(people) >= 100 and len(agencies) >= 4
    await register_sources(running.pool, {(e.source.agency, e.source.service_kind)
                                          for e in events})
    shuffled = shuffle_across_agencies(events, random.Random(9))
    assert shuffled != events  # genuinely out of order across agencies
    await publish(running.settings, shuffled)
    await wait_for(running.pool, "SELECT count(*) FROM event_archive", len(events))

    # one person id per simulated person, and each one's timeline
    person_of = {e.identifier_key: await running.pool.fetchval(
        "SELECT person_id::text FROM person_index_identifier WHERE scheme = $1 AND value = $2",
        e.strongest.scheme, e.strongest.value) for e in events}
    assert len(set(person_of.values())) == len(people) and None not in person_of.values()
    expected: dict[str, list[str]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e.occurred_at, e.recorded_at, e.event_id)):
        expected[person_of[e.identifier_key]].append(e.event_id)
    rows = await running.pool.fetch(SNAPSHOT)
    actual = {r["person_key"]: list(r["ids"]) for r in rows}
    assert actual == dict(expected)           # complete, ordered, no duplicates, nobody extra
    before = await running.pool.fetchrow(READ_MODELS)
    assert before["archive"] == before["timeline"] == len(events)
    assert before["history"] == sum(1 for e in events if e.family == "referral")

    # The same events again (a producer retry storm): positions move on, nothing changes.
    await publish(running.settings, shuffled)
    await wait_for(running.pool, "SELECT coalesce(sum(next_offset), 0) FROM consumer_position "
                   f"WHERE consumer = '{running.settings.processor_group}'", 2 * len(events))
    assert await running.pool.fetchrow(READ_MODELS) == before
    assert {r["person_key"]: list(r["ids"]) for r in await running.pool.fetch(SNAPSHOT)} == actual
