"""A malformed message never stops the worker: it is parked with its reason, and the events
after it are processed."""

from __future__ import annotations

import dataclasses
import io

import fastavro

from services.common.events import Source
from services.common.serde.agency_event import encode_event, event_to_record
from services.common.serde.avro import MAGIC, agency_codec
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.processor.conftest import publish, publish_raw, read_topic, wait_for


def _without_identifiers_body(event) -> bytes:  # type: ignore[no-untyped-def]
    record = event_to_record(event)
    record["identifiers"] = []
    buffer = io.BytesIO()
    buffer.write(MAGIC + agency_codec().current.fingerprint)
    fastavro.schemaless_writer(buffer, agency_codec().current.schema, record)
    return buffer.getvalue()


async def test_malformed_messages_are_parked_with_reasons_and_later_events_applied(
        running: Processor) -> None:
    settings = running.settings
    good_before = f.contact("attended", source="MENTAL_HEALTH")
    good_after = f.referral("made", source="PRISON")
    valid = encode_event(good_after)
    bad_nhs = f.event("contact.missed", f.Contact("c-9"), nhs="9434765918", source="PRISON")
    posing = f.contact("attended", source="HOUSING")  # another agency's name, on PRISON's topic
    unregistered = dataclasses.replace(
        f.contact("attended"), source=Source("unknown-agency", "VOLUNTARY", "crm"))
    key = good_after.person_key.encode()
    await publish(settings, [good_before])
    await publish_raw(settings, [
        (key, b"\x00not avro at all"),                                   # bad bytes
        (key, MAGIC + b"\x01" * 8 + valid[10:]),                         # unknown schema
        (key, valid[: len(valid) // 2]),                                 # truncated body
        (key, _without_identifiers_body(good_after)),                    # missing identifiers
        (key, encode_event(bad_nhs)),                                    # fails mod-11
        (key, encode_event(posing)),                                     # not its topic
    ])
    # Its own topic, but an agency nobody registered.
    await publish_raw(settings, [(key, encode_event(unregistered))], agency="unknown-agency")
    await publish(settings, [good_after])

    assert await wait_for(running.pool, "SELECT count(*) FROM event_archive", 2) == 2
    parked = await read_topic(settings.kafka_bootstrap or "", settings.topics.dead_letter, 7)
    prison_topic = settings.topics.agency("hmp-leeds")
    from_prison = [r for r in parked
                   if dict(r.headers)["__connect.errors.topic"].decode() == prison_topic]
    reasons = [dict(r.headers)["joinedup-reason"].decode() for r in from_prison]
    assert len(reasons) == 6
    assert reasons[0] == "undecodable: not Avro single-object encoding (missing C3 01 marker)"
    assert reasons[1].startswith("undecodable: unknown schema fingerprint 0101010101010101")
    assert reasons[2].startswith("undecodable: corrupt Avro body")
    assert reasons[3] == "undecodable: identifiers: at least one person identifier is required"
    assert reasons[4] == "invalid: identifiers[0].value: check digit does not match"
    assert reasons[5] == "refused: source.agency is not the agency that owns the topic it came on"
    [other] = [dict(r.headers)["joinedup-reason"].decode() for r in parked
               if r not in from_prison]
    assert other == "refused: the agency is not registered to publish (or is disabled)"
    assert all(r.value is not None for r in parked)  # the original bytes, for re-driving
    assert from_prison[1].key == key
    offsets = [int(dict(r.headers)["__connect.errors.offset"]) for r in from_prison]
    assert offsets == sorted(offsets)
    rows = await running.pool.fetch(
        "SELECT reason FROM dead_letter WHERE topic = $1 ORDER BY kafka_offset", prison_topic)
    # All six went to one partition (same key), so the parked order is the published order.
    assert [r["reason"] for r in rows] == reasons
    # No personal data in the reasons: the failing NHS number is not echoed.
    assert not any("9434765918" in r for r in reasons)
