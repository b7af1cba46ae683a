"""Across a link, one person's events go to one partition of the person-events topic, in the
order each source wrote them, after the merge that joined them; and no message key on any
topic is an identifier value."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from services.common.events import AgencyEvent, Identifier
from services.common.identifiers import nhs_check_digit
from services.common.kafka import key_partitioner
from services.common.serde.agency_event import read_event
from services.common.serde.avro import identity_codec
from services.identity import operator
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.identity.helpers import as_operator, person_of, settled, timeline_ids
from tests.integration.processor.conftest import publish, read_topic

pytestmark = pytest.mark.integration


def _partition(settings, person: str) -> int:  # type: ignore[no-untyped-def]
    partitions = list(range(settings.topic_partitions))
    return key_partitioner(person.encode(), partitions, partitions)


def _visit(identifier: Identifier, n: int, source: str) -> AgencyEvent:
    event = f.contact("attended", f"c-{source}-{n}", at=f.T0 + timedelta(hours=n),
                      source=source)
    return dataclasses.replace(event, identifiers=(identifier,))


async def test_one_persons_events_stay_in_one_partition_in_order_across_a_link(
        running: Processor) -> None:
    settings, pool = running.settings, running.pool
    assert settings.topic_partitions >= 4
    # Two records of one person, first taken for two people on two partitions (person ids
    # are random: draw pairs until they land apart).
    published: list[AgencyEvent] = []
    for attempt in range(20):
        nhs = Identifier("nhs_number", _valid_nhs(attempt))
        council = Identifier("local_id", f"HOUSING-{7781 + attempt}")
        held = Identifier("local_id", f"{f.SOURCES['HOUSING'].agency}/{council.value}")
        first = [_visit(nhs, 0, "PRISON"), _visit(council, 0, "HOUSING")]
        await publish(settings, first)
        published += first
        await settled(running, len(published))
        a, b = await person_of(pool, nhs), await person_of(pool, held)
        assert a and b and a != b
        if _partition(settings, a) != _partition(settings, b):
            break
    else:
        pytest.fail("twenty pairs of new people all landed on the same partition")

    [merged] = await as_operator(running, operator.linking(nhs, held))
    survivor = await person_of(pool, nhs)
    assert survivor in (a, b) and await person_of(pool, held) == survivor
    after = [_visit(nhs if n % 2 else council, n, "PRISON" if n % 2 else "HOUSING")
             for n in range(1, 21)]
    await publish(settings, after)
    published += after
    await settled(running, len(published))

    records = await read_topic(settings.kafka_bootstrap, settings.topics.person_events,
                               expected=len(published) + 1)
    mine = {e.event_id for e in after}
    placed = []
    merge_at = None
    for r in records:
        if identity_codec().wrote(r.value):
            if r.key == survivor.encode():
                merge_at = (r.partition, r.offset)
            continue
        event, _ = read_event(r.value)
        if event is not None and event.event_id in mine:
            placed.append((r.partition, r.offset, r.key, event))
    assert merge_at is not None and merge_at[0] == _partition(settings, survivor)
    assert {(p, k) for p, _, k, _ in placed} == {(merge_at[0], survivor.encode())}
    assert all(offset > merge_at[1] for _, offset, _, _ in placed)   # after the merge
    for source in ("PRISON", "HOUSING"):   # each source's events in the order written
        sent = [e.event_id for e in after if e.source == f.SOURCES[source]]
        assert [e.event_id for _, _, _, e in sorted(placed, key=lambda p: p[1])
                if e.source == f.SOURCES[source]] == sent
    assert len(await timeline_ids(pool, survivor)) == 2 + len(after)
    assert merged.change.asserted_by == "operator"

    # No topic this test wrote carries an identifier value in a message key.
    values = {i.value.encode() for e in published for i in e.identifiers}
    topics = [settings.topics.agency(s.agency) for s in f.SOURCES.values()
              if s.agency in {e.source.agency for e in published}]
    for topic in [*topics, settings.topics.person_events, settings.topics.alerts]:
        for record in await read_topic(settings.kafka_bootstrap, topic, expected=1,
                                       timeout=3):
            assert record.key is None or not any(v in record.key for v in values), topic
    uuid.UUID(survivor)  # the key after resolution is an opaque person id


def _valid_nhs(n: int) -> str:
    """A valid test-range NHS number (999...), the n-th one."""
    base = 999_000_000 + n * 7
    while (check := nhs_check_digit(str(base))) is None:
        base += 1
    return f"{base}{check}"
