"""Codec round trips and schema evolution.

The fixtures are messages written by version 1 producers and committed as bytes. If a change
to the schemas makes them unreadable (an edited v1 file changes its fingerprint; a new version
drops a field without a default or changes a type), these tests fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
from datetime import date
from pathlib import Path

import fastavro
import fastavro.utils
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import (
    ACCOMMODATION_STATUSES,
    DECLINE_REASONS,
    PAYLOAD_BY_FAMILY,
    SENSITIVITIES,
    SERVICE_KINDS,
    TRANSITION_KINDS,
    Identifier,
    IdentityNotice,
)
from services.common.serde.agency_event import decode_event, encode_event, event_to_record
from services.common.serde.avro import (
    MAGIC,
    DecodeError,
    agency_codec,
    alert_codec,
    governance_codec,
    identity_codec,
    load_schema_versions,
)
from services.common.validation import event_problems
from services.processor.domain.timeline import summarise
from tests import factories as f

FIXTURES = Path(__file__).parent / "fixtures"


def test_round_trip_every_family() -> None:
    samples = [
        f.referral("declined", to="SUBSTANCE_USE", decline_reason="CITES_OTHER_NEED_FIRST",
                   cites_service_kind="MENTAL_HEALTH", decided_by="triage", source="SUBSTANCE_USE"),
        f.transition("scheduled", "PRISON_RELEASE", scheduled_for=date(2026, 5, 1),
                     reason="RELEASED", accommodation_on_leaving="NO_FIXED_ABODE"),
        f.discharge("disengaged", source="SUBSTANCE_USE"),
        f.contact("follow_up", source="MENTAL_HEALTH"),
    ]
    for event in samples:
        data = encode_event(event)
        assert data[:2] == MAGIC
        assert data[2:10] == agency_codec().current.fingerprint
        assert decode_event(data) == event


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("agency_event.v1.*.bin")), ids=lambda p: p.name)
def test_version_1_messages_stay_readable(path: Path) -> None:
    event = decode_event(path.read_bytes())
    assert event.schema_version == 1
    assert event.causation_id is None           # added in v2, filled from its default
    assert event.source.agency == "mh-trust-leeds"
    if event.family == "contact":
        assert event.payload.referral_id is None  # type: ignore[union-attr]
    assert event.identifier_key == "nhs_number:9434765919"


def test_there_is_a_version_1_fixture_per_family_version_1_had() -> None:
    families = {p.name.split(".")[2] for p in FIXTURES.glob("agency_event.v1.*.bin")}
    assert families == set(PAYLOAD_BY_FAMILY) - {"identity"}  # identity came in v3


def test_a_version_2_event_stays_readable() -> None:
    """Written before v3 added the identity family: read with the v3 schema."""
    event = decode_event((FIXTURES / "agency_event.v2.referral.bin").read_bytes())
    assert (event.schema_version, event.event_type) == (2, "referral.declined")
    assert event.causation_id == "9d4c3b2a-1f0e-4d8c-b7a6-5e4d3c2b1a09"
    assert event.payload.cites_service_kind == "SUBSTANCE_USE"  # type: ignore[union-attr]


def test_an_identity_notice_round_trips_and_names_no_value_in_its_summary() -> None:
    notice = dataclasses.replace(
        f.event("identity.merged", IdentityNotice("noms_number", "A1234BC")),
        identifiers=(Identifier("noms_number", "B2345CD"),))
    assert event_problems(notice) == []
    assert decode_event(encode_event(notice)) == notice
    assert "A1234BC" not in summarise(notice) and "noms number" in summarise(notice)
    bad = dataclasses.replace(notice, payload=IdentityNotice("noms_number", "not-a-noms"))
    assert [p.field for p in event_problems(bad)] == ["payload.other_value"]


CODECS = {"agency_event": agency_codec, "alert_event": alert_codec,
          "identity_event": identity_codec, "governance_event": governance_codec}


@pytest.mark.parametrize("family", sorted(CODECS))
def test_every_older_schema_resolves_against_the_newest(family: str) -> None:
    versions = load_schema_versions(family)
    newest = versions[-1]
    for older, newer in itertools.pairwise(versions):
        assert newer.version == older.version + 1, "schema versions must be consecutive"
    for writer in versions:
        # fastavro raises SchemaResolutionError at reader construction for incompatible pairs
        records = list(fastavro.utils.generate_many(writer.schema, 5))
        for record in records:
            data = MAGIC + writer.fingerprint + _body(writer.schema, record)
            decoded = CODECS[family]().decode(data)
            assert set(decoded) == {f["name"] for f in newest.schema["fields"]}


def test_vocabularies_match_the_schema_enums() -> None:
    enums: dict[str, tuple[str, ...]] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "enum":
                enums[node["name"].split(".")[-1]] = tuple(node["symbols"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(agency_codec().current.schema)
    assert enums["ServiceKind"] == SERVICE_KINDS
    assert enums["TransitionKind"] == TRANSITION_KINDS
    assert enums["AccommodationStatus"] == ACCOMMODATION_STATUSES
    assert enums["Sensitivity"] == SENSITIVITIES
    assert enums["DeclineReason"] == DECLINE_REASONS


@pytest.mark.parametrize("data,reason", [
    (b"", "not Avro single-object encoding"),
    (b"\x00\x01garbagegarbage", "not Avro single-object encoding"),
    (MAGIC + b"\x00" * 8 + b"body", "unknown schema fingerprint"),
])
def test_unreadable_bytes_are_a_decode_error(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_event(data)


@given(st.binary(max_size=200))
def test_truncated_or_random_bodies_never_raise_anything_but_decode_error(tail: bytes) -> None:
    data = encode_event(f.contact("attended"))
    for candidate in (data[: 10 + len(tail) % max(1, len(data) - 10)], data[:10] + tail):
        with contextlib.suppress(DecodeError):
            decode_event(candidate)


def test_event_record_carries_the_current_schema_version() -> None:
    assert event_to_record(f.contact("missed"))["schema_version"] == agency_codec().current.version


def _body(schema: dict, record: dict) -> bytes:
    import io

    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


def test_a_payload_of_another_family_is_refused() -> None:
    record = event_to_record(f.contact("attended"))
    record["event_type"] = "discharge.completed"  # a contact payload under a discharge type
    data = agency_codec().encode(record)
    with pytest.raises(DecodeError, match="a discharge event needs a discharge payload"):
        decode_event(data)


def test_a_timestamp_beyond_year_9999_is_a_decode_error_not_a_crash() -> None:
    """Straight onto Kafka, a timestamp-millis Python cannot hold raised OverflowError, which
    no reader caught: the batch would have been retried for ever instead of parked."""
    from services.common.serde.agency_event import event_to_record, read_event
    from services.common.serde.avro import MAGIC, agency_codec
    from tests.factories import contact

    codec = agency_codec()
    record = {**event_to_record(contact("attended")), "occurred_at": 2**62}  # ms
    buffer = io.BytesIO()
    buffer.write(MAGIC + codec.current.fingerprint)
    fastavro.schemaless_writer(buffer, codec.current.schema, record)
    event, reason = read_event(buffer.getvalue())
    assert event is None and reason == "undecodable: corrupt Avro body (OverflowError)"


def test_a_version_1_alert_event_stays_readable() -> None:
    """Written before v2 added evidence: the new fields come from their defaults."""
    from services.alerts.codec import decode_alert_event

    alert = decode_alert_event((FIXTURES / "alert_event.v1.resolved.bin").read_bytes())
    assert alert.schema_version == 1 and alert_codec().current.version == 4
    assert (alert.action, alert.resolving_event_id, alert.actor) == (
        "resolved", "evt-2", "rules-engine")
    assert (alert.evidence_event_id, alert.evidence_agency, alert.detail) == (None, None, None)
    assert alert.at.isoformat() == "2026-03-05T13:00:00+00:00"


def test_a_version_2_alert_event_stays_readable() -> None:
    """Written before v3 added 'moved' and 'reopened' (records linked or separated)."""
    from services.alerts.codec import decode_alert_event, encode_alert_event

    data = (FIXTURES / "alert_event.v2.evidence.bin").read_bytes()
    alert = decode_alert_event(data)
    assert alert.schema_version == 2
    assert (alert.action, alert.evidence_agency, alert.detail) == (
        "evidence", "forward-leeds", "referral.declined")
    reopened = decode_alert_event(encode_alert_event(dataclasses.replace(
        alert, action="reopened", alert_event_id="8d0f7780-8536-41ef-855c-f18ac2e01bf8")))
    assert (reopened.action, reopened.schema_version) == ("reopened", 4)


def test_a_version_3_alert_event_stays_readable() -> None:
    """Written before v4 added a duty team's work (team, tier, assignee, snooze, comment)."""
    from services.alerts.codec import decode_alert_event, encode_alert_event

    moved = decode_alert_event((FIXTURES / "alert_event.v3.moved.bin").read_bytes())
    assert (moved.schema_version, moved.action) == (3, "moved")
    assert (moved.team_id, moved.tier, moved.assignee, moved.until, moved.version) == (
        None, None, None, None, None)
    snoozed = decode_alert_event(encode_alert_event(dataclasses.replace(
        moved, action="snoozed", until=moved.at, version=3, team_id="leeds-housing/options")))
    assert (snoozed.action, snoozed.until, snoozed.version, snoozed.schema_version) == (
        "snoozed", moved.at, 3, 4)
