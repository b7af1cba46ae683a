"""Dead letters, the pure parts: Kafka Connect's error headers, the original headers kept and
given back on a re-drive, what a parked message records, and its bytes decoded for `show`."""

from __future__ import annotations

import importlib
import io
import json
from datetime import UTC, datetime
from typing import get_args

import fastavro
from hypothesis import given
from hypothesis import strategies as st

from services.common import dead_letters as parking
from services.common.dead_letters import (
    ADMISSION,
    INTAKE,
    STAGES,
    Parked,
    Rejected,
    error_headers,
    original_headers,
    reason_kind,
)
from services.common.records import Message
from services.common.serde.agency_event import encode_event, event_to_record
from services.common.serde.avro import MAGIC, Framing, agency_codec
from services.operations.dead_letters import describe, redrive_headers, status
from services.operations.entrypoints.dead_letters import StageName
from tests import factories as f

AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
CONNECT = [
    "__connect.errors.topic", "__connect.errors.partition", "__connect.errors.offset",
    "__connect.errors.connector.name", "__connect.errors.task.id", "__connect.errors.stage",
    "__connect.errors.class.name", "__connect.errors.exception.class.name",
    "__connect.errors.exception.message",
]


def message(headers: tuple[tuple[str, bytes], ...] = (), topic: str = "jd.agency-events.hmp-x",
            value: bytes | None = b"v", key: bytes = b"key") -> Message:
    return Message(topic, 2, 41, key, value, 1_700_000_000_123, headers)


def test_a_publishers_timestamp_is_recorded_only_if_it_is_a_time() -> None:
    assert parking._moment(1_700_000_000_000) == datetime(2023, 11, 14, 22, 13, 20,
                                                          tzinfo=UTC)
    assert parking._moment(2**62) is None and parking._moment(0) is None


def test_error_headers_are_kafka_connects_and_ours() -> None:
    parked = Rejected.of(message(), "refused: the agency is not registered", ADMISSION).parked
    headers = error_headers(parked, AT)
    assert [k for k, _ in headers] == [*CONNECT, "joinedup-reason", "joinedup-parked-at"]
    values = dict(headers)
    assert values["__connect.errors.topic"] == b"jd.agency-events.hmp-x"
    assert (values["__connect.errors.partition"], values["__connect.errors.offset"]) == (
        b"2", b"41")
    assert values["__connect.errors.stage"] == b"TASK_PUT"
    assert values["__connect.errors.exception.class.name"] == (
        b"services.common.dead_letters.Refused")
    assert values["__connect.errors.exception.message"] == values["joinedup-reason"]
    assert values["joinedup-parked-at"] == b"2026-12-06T09:30:00+00:00"


def test_a_decode_failure_is_a_converter_stage_and_a_failure_names_its_class() -> None:
    undecodable = Rejected.of(message(), "undecodable: corrupt Avro body", INTAKE).parked
    assert dict(error_headers(undecodable, AT))["__connect.errors.stage"] == b"VALUE_CONVERTER"
    failed = Rejected.of(message(), "processing failed: DataError", INTAKE, KeyError).parked
    assert failed.exception_class == "builtins.KeyError"
    assert dict(error_headers(failed, AT))["__connect.errors.class.name"] == (
        b"services.processor.pipeline.BatchProcessor")


def test_a_parked_message_records_its_agency_time_and_the_letter_it_was_redriven_from() -> None:
    own = Rejected.of(message((("joinedup-redrive-of", b"17"),)), "refused: x", ADMISSION)
    assert (own.parked.agency, own.parked.timestamp, own.parked.redrive_of) == (
        "hmp-x", 1_700_000_000_123, 17)
    forwarded = Rejected.of(message(
        (("joinedup-origin-topic", b"jd.agency-events.mh-trust"),
         ("joinedup-redrive-of", b"not a number")), topic="jd.person-events"),
        "invalid: x", INTAKE)
    assert (forwarded.parked.agency, forwarded.parked.redrive_of) == ("mh-trust", None)
    assert Rejected.of(message(topic="jd.alerts"), "x", INTAKE).parked.agency is None
    for forged in (b"99999999999999999999", b"-4", b"\xff", b"0"):  # never fails the insert
        link = Rejected.of(message((("joinedup-redrive-of", forged),)), "x", ADMISSION)
        assert link.parked.redrive_of is None
    assert own.headers == (("joinedup-redrive-of", b"17"),) and own.value == b"v"


names = st.text(st.characters(codec="utf-8"), max_size=20)
header_lists = st.lists(st.tuples(names, st.binary(max_size=20)), max_size=6)


@given(header_lists)
def test_the_original_headers_survive_a_parking_and_a_redrive(headers: list) -> None:  # type: ignore[type-arg]
    own = [(k, v) for k, v in headers
           if not k.startswith("__connect.errors.")
           and k not in ("joinedup-reason", "joinedup-parked-at", "joinedup-redrive-of")]
    parked = Parked("t", 0, 5, "refused: x", "admission")
    on_topic = [*original_headers(headers), *error_headers(parked, AT)]
    assert original_headers(on_topic) == original_headers(headers)
    assert redrive_headers(on_topic, 9) == [*own, ("joinedup-redrive-of", b"9")]


def test_the_stages_name_real_classes_and_the_api_knows_them() -> None:
    for stage in STAGES.values():
        module, _, name = stage.executing_class.rpartition(".")
        assert hasattr(importlib.import_module(module), name)
    assert set(get_args(StageName)) == set(STAGES)


def test_reasons_are_counted_by_kind() -> None:
    assert reason_kind("undecodable: unknown schema fingerprint 0101") == "undecodable"
    assert reason_kind("refused: source.agency is not the agency") == "refused"
    assert reason_kind("processing failed: DataError") == "processing failed"
    assert reason_kind("no colon at all") == "no colon at all"


def test_show_decodes_an_event_as_the_gateway_body() -> None:
    event = f.contact("attended")
    content = describe(encode_event(event))
    assert (content.form, content.schema, content.note) == ("avro", "agency_event v3", None)
    assert content.decoded["event_id"] == event.event_id
    assert content.decoded["payload"]["family"] == "contact"
    json.dumps(content.decoded)  # what --json prints


def test_show_decodes_an_event_written_in_the_confluent_wire_format() -> None:
    event = f.contact("attended")
    written = agency_codec().encode(event_to_record(event), Framing(confluent=True))
    assert written[:1] == b"\x00"
    content = describe(written)
    assert (content.form, content.schema) == ("avro", "agency_event v3")
    assert content.decoded["event_id"] == event.event_id


def test_show_gives_the_record_of_an_invalid_event_and_says_why() -> None:
    record = event_to_record(f.contact("attended"))
    record["identifiers"] = []
    buffer = io.BytesIO()
    buffer.write(MAGIC + agency_codec().current.fingerprint)
    fastavro.schemaless_writer(buffer, agency_codec().current.schema, record)
    content = describe(buffer.getvalue())
    assert content.form == "avro" and content.decoded["identifiers"] == []
    assert content.note == ("not a valid event (identifiers: at least one person identifier "
                            "is required); the record as written")


def test_show_reads_json_and_falls_back_to_hex_with_the_reason() -> None:
    assert describe(b'{"event_type": "contact.attended"}').form == "json"
    raw = describe(b"\x00not avro")
    assert (raw.form, raw.hex, raw.base64) == ("raw", b"\x00not avro".hex(), "AG5vdCBhdnJv")
    assert raw.note == ("neither Avro (no C3 01 single-object marker, no Confluent schema id "
                        "joinedup knows) nor UTF-8 JSON")
    unknown = describe(MAGIC + b"\x01" * 8 + b"body")
    assert unknown.form == "raw" and "unknown schema fingerprint 0101010101010101" in (
        unknown.note or "")
    truncated = describe(encode_event(f.contact("attended"))[:14])
    assert truncated.form == "raw" and (truncated.note or "").startswith("agency_event v3:")
    assert describe(None).note == "no value (a tombstone)"


def test_status_of_a_dead_letter() -> None:
    assert status({"purged_at": None, "redriven_at": None}) == "open"
    assert status({"purged_at": None, "redriven_at": AT}) == "redriven"
    assert status({"purged_at": AT, "redriven_at": AT}) == "purged"
    assert parking.agency_of_topic("jd.agency-events.") is None


def test_usage_errors_are_one_line() -> None:
    from tests.unit.operations.test_cli import run

    for args in (["dead-letters", "redrive", "3", "--by", "me"],        # no --reason
                 ["dead-letters", "list", "--by", "me", "--limit", "0"],
                 ["dead-letters", "list", "--by", "me", "--since", "yesterday"],
                 ["dead-letters", "show", "x", "--by", "me"]):
        refused = run(*args)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, (args, refused.stderr)
        assert lines[0].startswith("joinedup dead-letters ")


def test_only_a_person_events_key_names_a_person() -> None:
    from services.common.settings import Settings
    from services.operations.dead_letters import DeadLetters

    settings = Settings(environment="test")
    letters = DeadLetters(None, settings)  # type: ignore[arg-type]  # no database needed
    person = "0b6f2a52-8a3c-4d1e-9a51-8f1e8c0c4b11"
    on = {"topic": settings.topics.person_events}
    assert letters._person(on, message(topic=on["topic"], key=person.encode())) == person
    assert letters._person(on, message(topic=on["topic"], key=b"not-a-uuid")) is None
    agency = {"topic": settings.topics.agency("hmp-leeds")}
    assert letters._person(agency, message(topic=agency["topic"], key=person.encode())) is None
