"""Personal data out of log text (services.common.redaction): the scrubber, the filter that
every handler's record goes through, and the structlog processor."""

from __future__ import annotations

import logging
import random
import string
import sys
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import IDENTIFIER_SCHEMES
from services.common.identifiers import make_crn, make_nhs_number, make_noms_number, make_pnc_id
from services.common.redaction import PersonalDataFilter, scrub_event, scrub_text, scrub_value
from services.common.serde.agency_event import encode_event
from tests.factories import referral

seeds = st.integers(min_value=0, max_value=2**32)


def _local_id(rng: random.Random) -> str:  # the shape services/simulation gives council ids
    return rng.choice(["HOU", "ADU", "LEA", "OPE", "LEE"]) + f"{rng.randrange(10**7):07d}"


_MAKERS = {
    "nhs_number": lambda rng: make_nhs_number(rng, prefix=rng.choice(["", "999"])),
    "noms_number": make_noms_number,
    "crn": make_crn,
    "pnc_id": make_pnc_id,
    "local_id": _local_id,
}
identifiers = st.tuples(st.sampled_from(sorted(_MAKERS)), seeds).map(
    lambda pair: (pair[0], _MAKERS[pair[0]](random.Random(pair[1]))))

#: What stands between a value and the text around it in real log lines.
separators = st.sampled_from([" ", "=", ": ", "'", '"', "(", ")", "[", "]", ",", ";", "\n", "\t",
                              "{", "}", "<", ">", "|", "/ "])
#: Text around the value that cannot glue onto it (a value glued to letters or digits is a
#: documented blind spot).
words = st.text(alphabet=string.ascii_letters + string.digits + " .:-_", max_size=30)


def _emit(msg: object, *args: object, exc_info: bool = False) -> str:
    """One record through the filter and a plain formatter, as the root handler does it."""
    record = logging.LogRecord("aiokafka.producer", logging.DEBUG, __file__, 1, msg, args,
                               sys.exc_info() if exc_info else None)
    assert PersonalDataFilter().filter(record) is True
    assert not record.args and record.exc_info is None
    return logging.Formatter("%(message)s").format(record)


@pytest.mark.parametrize(("text", "expected"), [
    ("Sending (key=b'nhs_number:9434765919' value=b'\\x02\\x0eA1234BC') to tp",
     "Sending (key=<redacted 21 bytes> value=<redacted 9 bytes>) to tp"),
    ('messages=bytearray(b"it\'s")', "messages=bytearray(<redacted 4 bytes>)"),
    ("value=b'cut short by a library", "value=<redacted bytes>"),
    ("nhs_number:9434765919 noms_number:A1234BC crn:X123456 pnc_id:2019/0012345A",
     "nhs_number:[redacted] noms_number:[redacted] crn:[redacted] pnc_id:[redacted]"),
    ("local_id:anything-at-all;", "local_id:[redacted];"),
    ("Identifier(scheme='local_id', value='Flat 3, Leeds')",
     "Identifier(scheme='local_id', value='[redacted]')"),
    ('{"scheme": "local_id", "value": "any text"}', '{"scheme": "local_id", "value": "[redacted]"}'),
    ("{'person_key': 'local_id:Flat 3'}", "{'person_key': '[redacted]'}"),
    ("seen 943 476 5919, 943-476-5919, 9434765919", "seen [redacted], [redacted], [redacted]"),
    ("prison A1234BC probation X123456 police 98/123456A council HOU0001234",
     "prison [redacted] probation [redacted] police [redacted] council [redacted]"),
])
def test_scrubs_bytes_person_keys_fields_and_identifier_shapes(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


@pytest.mark.parametrize("text", [
    "event 3f2a9b1c-1234-4567-8901-123456789012 applied at offset 1234567 of partition 3",
    "Updating subscribed topics to: frozenset({'t208bb78a20.agency-events'})",
    "2026-01-05T00:00:00.123456Z took 12.5 ms; HTTP/1.1 200; 127.0.0.1:54321",
    "batch applied: 100 events, 0 duplicates",
])
def test_leaves_ordinary_operational_text_alone(text: str) -> None:
    assert scrub_text(text) == text


def test_scrubbing_twice_changes_nothing_more() -> None:
    once = scrub_text("key=b'x' nhs_number:9434765919 value='a b' A1234BC")
    assert scrub_text(once) == once


@given(identifiers, words, separators, separators, words)
def test_identifier_values_never_survive_in_the_message(
        identifier: tuple[str, str], before: str, left: str, right: str, after: str) -> None:
    _, value = identifier
    assert value not in _emit(f"{before}{left}{value}{right}{after}")


@given(identifiers, words, separators)
def test_identifier_values_never_survive_as_arguments(
        identifier: tuple[str, str], before: str, sep: str) -> None:
    scheme, value = identifier
    for args in [(value,), (f"{scheme}:{value}",), ((scheme, value),), ({"value": value},),
                 (value.encode(),), (f"{scheme}:{value}".encode(),)]:
        assert value not in _emit(f"{before}{sep}%s{sep}%r", args[0], args[0])
    assert value not in _emit("%(key)s %(value)r", {"key": f"{scheme}:{value}", "value": value})


@given(st.sampled_from(IDENTIFIER_SCHEMES),
       st.text(st.characters(blacklist_categories=("C", "Z"), blacklist_characters="'\"\\,;()[]{}<>"),
               min_size=1, max_size=64))
def test_any_value_of_a_person_key_or_quoted_field_is_redacted(scheme: str, value: str) -> None:
    """Council ids are free text: no shape to look for, so the field name is what tells."""
    assert scrub_text(f"for {scheme}:{value} now") == f"for {scheme}:[redacted] now"
    quoted = scrub_text(f"{scheme}='{value}', x")
    assert quoted.startswith(f"{scheme}='[redacted]'")
    if not value.endswith("b"):  # ...b' reads as a bytes literal: the rest of the line goes too
        assert quoted == f"{scheme}='[redacted]', x"


@given(st.binary(max_size=300), identifiers)
def test_bytes_never_survive_in_any_form(data: bytes, identifier: tuple[str, str]) -> None:
    _, value = identifier
    payload = data + value.encode() + data
    for arg in (payload, bytearray(payload), memoryview(payload)):
        out = _emit("Sending value=%s (%r)", arg, arg)
        assert value not in out and "b'" not in out and 'b"' not in out
    out = _emit("Request %s", [("topic", payload), {"key": payload}])  # repr'd inside
    assert value not in out and "b'" not in out and 'b"' not in out


@given(st.binary(max_size=300))
def test_a_bytes_repr_becomes_its_size(data: bytes) -> None:
    assert scrub_text(f"x={data!r}, y={bytearray(data)!r}") == (
        f"x=<redacted {len(data)} bytes>, y=bytearray(<redacted {len(data)} bytes>)")


def test_odd_escapes_in_a_literal_raise_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning here would be logged from inside the filter
        assert scrub_text(r"b'\d\q' x") == "<redacted 2 bytes> x"  # no repr writes those


def test_an_avro_encoded_event_is_redacted_whole() -> None:
    event = referral("made")
    value = encode_event(event)
    out = _emit("Sending (key=%s value=%s) to %s", event.person_key.encode(), value, "tp")
    assert out == (f"Sending (key=<redacted {len(event.person_key)} bytes> "
                   f"value=<redacted {len(value)} bytes>) to tp")


def test_tracebacks_and_stacks_are_scrubbed_into_the_message() -> None:
    try:
        raise ValueError("no person for nhs_number:9434765919 (A1234BC)")
    except ValueError:
        out = _emit("Agent crashed on %r", b"\x00payload", exc_info=True)
    assert "9434765919" not in out and "A1234BC" not in out
    assert "Traceback (most recent call last)" in out and "ValueError: no person" in out
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    record.stack_info = "Stack (most recent call last):\n  crn=X123456"
    PersonalDataFilter().filter(record)
    assert "X123456" not in record.getMessage() and record.stack_info is None


def test_a_bad_format_shows_the_format_not_the_arguments() -> None:
    out = _emit("offset %d for %s", "A1234BC")
    assert "A1234BC" not in out and out.startswith("offset %d for %s")


def test_the_filter_never_raises_and_withholds_what_it_cannot_scrub() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("A1234BC")

    out = _emit("value %s", Unprintable())
    assert out == "<log record withheld: redaction failed (RuntimeError)>"


def test_structlog_event_dicts_passing_through_the_filter_are_scrubbed() -> None:
    record = logging.LogRecord("joinedup.x", logging.INFO, __file__, 1,
                               {"event": "for crn:X123456", "key": b"k", "n": 3}, (), None)
    PersonalDataFilter().filter(record)
    assert record.msg == {"event": "for crn:[redacted]", "key": "<redacted 1 bytes>", "n": 3}


def test_the_structlog_processor_scrubs_every_value_and_the_event_text() -> None:
    event_dict = {
        "event": "linked A1234BC to X123456", "count": 3, "ratio": 0.5, "ok": True, "none": None,
        "key": b"nhs_number:9434765919", "raw": 9434765919, "offset": 1234567,
        "nested": {"ids": ["HOU0001234", ("pnc_id:2019/0012345A",)]},
        "_record": object(),
    }
    out = scrub_event(None, "info", event_dict)
    assert out["event"] == "linked [redacted] to [redacted]"
    assert (out["count"], out["ratio"], out["ok"], out["none"], out["offset"]) == (
        3, 0.5, True, None, 1234567)
    assert out["key"] == "<redacted 21 bytes>" and out["raw"] == "[redacted]"
    assert out["nested"] == {"ids": ["[redacted]", ["pnc_id:[redacted]"]]}
    assert "_record" in out  # structlog's own entries are left for structlog


@given(identifiers, words)
def test_the_structlog_processor_never_lets_an_identifier_through(
        identifier: tuple[str, str], before: str) -> None:
    scheme, value = identifier
    out = scrub_event(None, "debug", {"event": f"{before} {value}", "a": f"{scheme}:{value}",
                                      "b": [value.encode()], "c": {"d": (value,)}})
    assert value not in repr(scrub_value(out))
