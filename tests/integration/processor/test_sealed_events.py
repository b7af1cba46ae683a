"""Sealed events in the processor: an event admission forwarded under a person whose identity
decision then rolled back (its key never committed) is skipped, not parked and not applied
(admission forwards it again under the person decided next); and person-events carries no
identifier in the clear."""

from __future__ import annotations

import uuid

import pytest

from services.common.kafka import make_producer
from services.common.serde.agency_event import encode_event
from services.common.serde.sealing import new_key, person_ref, seal_event
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.processor.conftest import publish, read_topic, wait_for

pytestmark = pytest.mark.integration


async def test_an_event_sealed_by_a_rolled_back_decision_is_skipped(running: Processor
                                                                     ) -> None:
    settings = running.settings
    orphan_person = str(uuid.uuid4())   # never committed: no key row
    orphan = seal_event(f.contact("attended", source="HOUSING"), new_key(),
                        person_ref(orphan_person))
    producer = make_producer(settings)
    await producer.start()
    try:
        await (await producer.send(settings.topics.person_events, encode_event(orphan),
                                   key=orphan_person.encode()))
    finally:
        await producer.stop()
    applied = f.transition("occurred", "PRISON_RELEASE", reason="RELEASED")
    await publish(settings, [applied])
    await wait_for(running.pool, "SELECT count(*) FROM event_archive", 1)
    await wait_for(running.pool, "SELECT sum(next_offset) FROM consumer_position "
                   "WHERE topic LIKE '%.person-events'", 2)
    archived = {r[0] for r in await running.pool.fetch(
        "SELECT event_id::text FROM event_archive")}
    assert archived == {applied.event_id}
    assert await running.pool.fetchval("SELECT count(*) FROM dead_letter") == 0
    records = await read_topic(settings.kafka_bootstrap or "", settings.topics.person_events, 2)
    assert all(f.NHS.encode() not in (r.value or b"") for r in records)
