"""The Confluent wire format beside single-object encoding: either framing reads back the
same record, every reader accepts both, the stable schema ids, and the client that
registers the schemas in an external registry."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import fastavro
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common import schema_registry as table
from services.common.serde import confluent
from services.common.serde.agency_event import decode_event, encode_event, event_to_record
from services.common.serde.avro import (
    MAGIC,
    DecodeError,
    agency_codec,
    confluent_schema_id,
    framing,
    identity_codec,
    use_framing,
)
from services.common.settings import Settings, Topics
from tests import factories as f

EVENTS = [f.contact("attended"), f.referral("made"), f.transition("occurred", "PRISON_RELEASE")]


@pytest.fixture
def writes_confluent() -> Iterator[None]:
    use_framing(confluent.CONFLUENT)
    try:
        yield
    finally:
        use_framing(None)


def test_the_default_framing_is_single_object() -> None:
    use_framing(None)
    try:
        assert framing() == confluent.SINGLE_OBJECT
        assert encode_event(EVENTS[0])[:2] == MAGIC
    finally:
        use_framing(None)


def test_the_settings_choose_the_framing_and_nothing_reads_them_behind_the_entry_point(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOINEDUP_KAFKA_WIRE_FORMAT", "confluent")
    use_framing(None)
    assert framing() == confluent.SINGLE_OBJECT   # the environment alone changes nothing
    chosen = confluent.framing_from_settings(Settings())
    assert chosen == confluent.CONFLUENT
    use_framing(chosen)
    try:
        assert encode_event(EVENTS[0])[:1] == b"\x00"
    finally:
        use_framing(None)


@pytest.mark.usefixtures("writes_confluent")
@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event_type)
def test_a_process_writing_confluent_frames_with_the_stable_id(event) -> None:  # type: ignore[no-untyped-def]
    data = encode_event(event)
    assert data[0] == 0
    assert confluent.schema_id(data) == confluent_schema_id(agency_codec().current.fingerprint)
    assert decode_event(data) == event


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event_type)
def test_both_framings_carry_the_same_avro_body(event) -> None:  # type: ignore[no-untyped-def]
    record = event_to_record(event)
    single = agency_codec().encode(record, confluent.SINGLE_OBJECT)
    framed = confluent.encode(agency_codec(), record)
    assert single[10:] == framed[5:]
    assert decode_event(single) == decode_event(framed) == event


def test_an_older_schema_in_confluent_framing_is_resolved_against_the_newest() -> None:
    oldest = agency_codec().versions[0]
    record = event_to_record(f.contact("attended"))
    record["schema_version"] = 1
    record["payload"] = ("joinedup.Contact", {"contact_id": "c-1", "mode": None})
    buffer = io.BytesIO()
    buffer.write(b"\x00" + confluent_schema_id(oldest.fingerprint).to_bytes(4, "big"))
    fastavro.schemaless_writer(buffer, oldest.schema, record)
    event = decode_event(buffer.getvalue())
    assert event.schema_version == 1
    assert event.payload.referral_id is None  # type: ignore[union-attr]


def test_a_standard_deserializer_reads_the_body_with_the_served_schema_text() -> None:
    event = f.referral("made")
    data = confluent.encode(agency_codec(), event_to_record(event))
    served = table.schema_by_id(confluent.schema_id(data))
    assert served is not None
    record = fastavro.schemaless_reader(io.BytesIO(data[5:]),
                                        fastavro.parse_schema(json.loads(served.text)))
    assert isinstance(record, dict)
    assert str(record["event_id"]) == event.event_id
    assert record["identifiers"] == [{"scheme": "nhs_number", "value": f.NHS}]


def test_families_are_told_apart_in_either_framing() -> None:
    record = event_to_record(f.contact("attended"))
    for data in (agency_codec().encode(record, confluent.SINGLE_OBJECT),
                 confluent.encode(agency_codec(), record)):
        assert agency_codec().wrote(data)
        assert not identity_codec().wrote(data)


def test_a_confluent_frame_with_a_foreign_id_reads_as_unreadable_bytes() -> None:
    body = confluent.encode(agency_codec(), event_to_record(f.contact("attended")))[5:]
    foreign = b"\x00" + (7).to_bytes(4, "big") + body
    assert not agency_codec().wrote(foreign)
    with pytest.raises(DecodeError, match="missing C3 01 marker"):
        decode_event(foreign)


@given(st.integers(1, 2**31 - 1).filter(lambda i: table.schema_by_id(i) is None),
       st.binary(max_size=40))
def test_any_id_that_is_not_ours_is_refused_with_a_reason(schema_id: int, body: bytes) -> None:
    with pytest.raises(DecodeError, match="missing C3 01 marker"):
        decode_event(b"\x00" + schema_id.to_bytes(4, "big") + body)


@given(st.text(min_size=1, max_size=200), st.sampled_from(["single-object", "confluent"]))
def test_any_event_round_trips_in_either_framing(reason: str, wire: str) -> None:
    event = f.referral("made", reason=reason)
    data = agency_codec().encode(event_to_record(event), confluent.framing_for(wire))  # type: ignore[arg-type]
    assert decode_event(data) == event
    assert agency_codec().wrote(data)


@given(st.binary(max_size=200))
def test_a_known_id_with_a_broken_body_is_a_decode_error(tail: bytes) -> None:
    data = confluent.encode(agency_codec(), event_to_record(f.contact("attended")))
    for candidate in (data[: 5 + len(tail) % max(1, len(data) - 5)], data[:5] + tail):
        try:
            decode_event(candidate)
        except DecodeError as exc:  # refused with a reason, never another exception
            assert exc.reason


def test_every_schema_has_a_distinct_stable_id_in_the_signed_32_bit_range() -> None:
    versions = [v for c in confluent.codecs() for v in c.versions]
    ids = {confluent_schema_id(v.fingerprint) for v in versions}
    assert len(ids) == len(versions)
    assert all(0 < i < 2**31 for i in ids)


def test_registry_ids_that_shadow_another_schemas_stable_id_are_refused() -> None:
    agency, identity = agency_codec().current, identity_codec().current
    clash = {agency.fingerprint: confluent_schema_id(identity.fingerprint)}
    with pytest.raises(ValueError, match="ambiguous"):
        confluent.framing_for("confluent", clash)
    same = {agency.fingerprint: confluent_schema_id(agency.fingerprint)}
    assert confluent.framing_for("confluent", same).confluent


def test_ids_an_external_registry_gave_are_written_and_read() -> None:
    ids = {agency_codec().current.fingerprint: 21}
    use_framing(confluent.framing_for("confluent", ids))
    try:
        event = f.contact("attended")
        data = encode_event(event)
        assert confluent.schema_id(data) == 21
        assert decode_event(data) == event
        assert agency_codec().wrote(data) and not identity_codec().wrote(data)
    finally:
        use_framing(None)


class _Registry:
    """An external registry's register call: the same schema text gets the same id under any
    subject, ids counted from 1 (as Confluent's does); a subject named ``refused`` answers
    409 like an incompatible schema."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.subjects: dict[str, list[int]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        subject = request.url.path.split("/")[2]
        if "refused" in subject:
            return httpx.Response(409, json={"error_code": 409, "message": "incompatible"})
        text = json.loads(request.content)["schema"]
        json.loads(text)  # a real registry parses it
        given_id = self.ids.setdefault(text, len(self.ids) + 1)
        self.subjects.setdefault(subject, []).append(given_id)
        return httpx.Response(200, json={"id": given_id})


def test_registering_gives_every_schema_an_id_under_its_topics_subject() -> None:
    fake = _Registry()
    client = httpx.Client(base_url="http://registry", transport=httpx.MockTransport(fake))
    ids = table.register("http://registry", Topics("jx"), ["hmp-leeds"], client=client)
    versions = [v for c in confluent.codecs() for v in c.versions]
    assert set(ids) == {v.fingerprint for v in versions}
    assert sorted(set(ids.values())) == list(range(1, len(versions) + 1))
    assert set(fake.subjects) == {"jx.person-events-value", "jx.person-events-joinedup.IdentityEvent",
                                  "jx.alerts-value", "jx.governance-value",
                                  "jx.agency-events.hmp-leeds-value"}
    # the same agency schemas under person-events and the agency topic: the same ids
    assert fake.subjects["jx.person-events-value"] == fake.subjects[
        "jx.agency-events.hmp-leeds-value"]
    assert confluent.framing_for("confluent", ids).registry_ids == ids


def test_a_refusing_registry_is_one_clear_error_naming_the_subject() -> None:
    client = httpx.Client(base_url="http://registry", transport=httpx.MockTransport(_Registry()))
    with pytest.raises(table.RegistryError, match=r"under refused\.person-events-value \(error 409\)"):
        table.register("http://registry", Topics("refused"), client=client)


def test_the_command_lists_every_subject_version_and_stable_id(
        capsys: pytest.CaptureFixture[str]) -> None:
    from services.operations.cli import main

    assert main(["schema-registry", "list", "--json", "--agency", "hmp-leeds"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = {(s.name, v.version, confluent_schema_id(v.fingerprint))
                for s in table.subjects(Settings().topics, ["hmp-leeds"]) for v in s.versions}
    assert {(r["subject"], r["version"], r["id"]) for r in rows} == expected


def test_registering_without_a_registry_is_one_line_and_exit_2(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from services.operations.cli import main

    monkeypatch.delenv("JOINEDUP_SCHEMA_REGISTRY_URL", raising=False)
    assert main(["schema-registry", "register"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
