"""Recording governance events when a server goes away mid-request: nothing is recorded by
half, nothing is lost, and what was answered 201 reaches the governance topic once."""

from __future__ import annotations

import pytest

from projections.queries import reads as q
from services.common.kafka import TopicGuard, make_producer
from services.common.outbox import OutboxPublisher
from services.common.serde.governance_event import decode_governance_event
from services.reads import accounts
from services.reads.bootstrap import governance_headers
from services.reads.domain.audit import Caller
from services.reads.domain.governance import ConsentGiven
from services.reads.domain.visibility import Reader
from services.reads.service import PersonReads, person_reads
from tests import factories as f
from tests.integration.processor.conftest import read_topic
from tests.integration.reads.conftest import World

pytestmark = pytest.mark.integration

CONSENT = {"agencies": ["leeds-housing"], "categories": ["SUBSTANCE_USE"], "kind": "explicit"}


async def test_a_locked_table_is_a_503_with_nothing_recorded_then_the_retry_records_once(
        world: World) -> None:
    person = world.person()
    blocker = await world.pool.acquire()
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE governance_event IN ACCESS EXCLUSIVE MODE")
        async with world.as_user("drugs.worker") as drugs:
            refused = await drugs.post(f"/v1/people/{person}/consents", json=CONSENT)
        await tx.rollback()
    finally:
        await world.pool.release(blocker)
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"]
    count = "SELECT count(*) FROM governance_event WHERE person_id = $1::uuid"
    audited = ("SELECT count(*) FROM access_audit WHERE person_id = $1::uuid "
               "AND action = 'consent.given'")
    assert await world.pool.fetchval(count, person) == 0
    assert await world.pool.fetchval(audited, person) == 0   # no audit of what did not happen
    async with world.as_user("drugs.worker") as drugs:
        retried = await drugs.post(f"/v1/people/{person}/consents", json=CONSENT)
    assert retried.status_code == 201, retried.text
    assert await world.pool.fetchval(count, person) == 1
    assert await world.pool.fetchval(audited, person) == 1


async def test_a_broker_gone_keeps_the_event_in_the_outbox_until_it_is_back(world: World
                                                                            ) -> None:
    person = world.person()
    settings = world.settings
    gone = make_producer(settings)
    await gone.start()
    await gone.stop()   # every send now fails, as with the broker away
    away = person_reads(world.pool, settings, OutboxPublisher(
        world.pool, gone, settings.topics.governance, q.PENDING_GOVERNANCE_OUTBOX,
        q.CLEAR_GOVERNANCE_OUTBOX))
    worker = Caller(await _reader(world, "drugs.worker"), "practitioner")
    event = await away.record(worker, person, ConsentGiven(
        "c-outage", frozenset({"leeds-housing"}), frozenset({"SUBSTANCE_USE"}), f.T0, None,
        "explicit"))
    pending = "SELECT count(*) FROM governance_outbox WHERE event_id = $1::uuid"
    assert await world.pool.fetchval(pending, event.event_id) == 1   # recorded, not lost

    back = make_producer(settings)
    await back.start()
    try:
        drained = PersonReads(world.pool, {}, away.key_ring, OutboxPublisher(
            world.pool, back, settings.topics.governance, q.PENDING_GOVERNANCE_OUTBOX,
            q.CLEAR_GOVERNANCE_OUTBOX, TopicGuard(back), headers=governance_headers))
        await drained.publish()
    finally:
        await back.stop()
    assert await world.pool.fetchval(pending, event.event_id) == 0
    records = await read_topic(settings.kafka_bootstrap or "", settings.topics.governance, 50,
                               timeout=5)
    mine = [r for r in records if r.key == person.encode()]
    assert [decode_governance_event(r.value).event_id for r in mine] == [event.event_id]
    headers = {k: v.decode() for k, v in mine[0].headers}   # the CloudEvents Kafka binding
    assert (headers["ce_id"], headers["ce_source"], headers["ce_type"]) == (
        event.event_id, "/joinedup/governance", event.event_type)


async def _reader(world: World, username: str) -> Reader:
    async with world.pool.acquire() as conn:
        found = await accounts.find_practitioner(conn, username)
    assert found is not None
    return found.reader
