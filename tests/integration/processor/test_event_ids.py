"""Event ids are unique within the agency that chose them. Straight onto Kafka: two agencies'
events with one id are both kept; an agency reusing its own id for a different event is
refused with the reason (before, the archive silently kept the first and dropped the other);
the same event sent again is recognised and changes nothing."""

from __future__ import annotations

import dataclasses

from services.common.events import Contact
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.processor.conftest import publish, read_topic, wait_for


async def test_one_id_two_agencies_both_kept_and_a_reuse_refused(running: Processor) -> None:
    settings = running.settings
    prison = f.contact("attended", source="PRISON")
    housing = dataclasses.replace(f.contact("attended", source="HOUSING"),
                                  event_id=prison.event_id)
    reused = dataclasses.replace(prison, payload=Contact("c-other", "PHONE"))  # other content
    await publish(settings, [housing, prison, prison, reused])

    parked = await read_topic(settings.kafka_bootstrap or "", settings.topics.dead_letter, 1)
    assert await wait_for(running.pool, "SELECT count(*) FROM event_archive", 2) == 2
    rows = await running.pool.fetch(
        "SELECT source_agency FROM event_archive WHERE event_id = $1::uuid", prison.event_id)
    assert sorted(r[0] for r in rows) == sorted([prison.source.agency, housing.source.agency])
    assert await running.pool.fetchval("SELECT count(*) FROM timeline_entry") == 2
    [message] = parked
    assert dict(message.headers)["joinedup-reason"].decode() == (
        "refused: this agency already published a different event with this event id "
        "(event ids identify one event per agency)")
    reason = await running.pool.fetchval("SELECT reason FROM dead_letter")
    assert reason.startswith("refused: this agency already published")
