"""Text that cannot be stored (U+0000, unpaired surrogates) is refused, in every string field.

PostgreSQL's text type has no U+0000 and UTF-8 has no unpaired surrogate: an event carrying
either used to be accepted (202) and then parked by the processor. The gateway's parser and
the processor share ``event_problems``, so both refuse it with the same path and reason.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.common.events import AgencyEvent, Identifier
from services.common.serde.agency_json import event_to_json
from services.common.validation import event_problems
from services.ingest.domain.parsing import content_hash, parse_cloudevent, parse_event
from tests.factories import NHS, contact, referral
from tests.unit.ingest.test_parsing import NOW, TOLERANCE

# A short string with at least one NUL or unpaired surrogate somewhere in it.
_fine = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
_bad = st.one_of(st.just("\x00"), st.integers(0xD800, 0xDFFF).map(chr))
unstorable = st.tuples(_fine, _bad, _fine).map("".join)

Mutate = Callable[[dict[str, Any], str], None]


def _set(*path: str | int) -> Mutate:
    def mutate(body: dict[str, Any], text: str) -> None:
        target: Any = body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = text
    return mutate


def _extra_key(body: dict[str, Any], text: str) -> None:
    body["extra"] = {"prison": "LEI", text: "x"}


# Free-text fields: refused with code invalid_character at exactly this path.
TEXT_FIELDS: dict[str, Mutate] = {
    "causation_id": _set("causation_id"),
    "source.agency": _set("source", "agency"),
    "source.system": _set("source", "system"),
    "source.team": _set("source", "team"),
    "source.area": _set("source", "area"),
    "identifiers[0].value": _set("identifiers", 0, "value"),
    "identifiers[1].value": _set("identifiers", 1, "value"),
    "payload.referral_id": _set("payload", "referral_id"),
    "payload.to_agency": _set("payload", "to_agency"),
    "payload.reason": _set("payload", "reason"),
    "payload.decided_by": _set("payload", "decided_by"),
    "payload.outcome": _set("payload", "outcome"),
    "extra.prison": _set("extra", "prison"),
    "extra": _extra_key,
}
# Fields with a vocabulary or a format: refused at this path, whichever check says so first.
CODED_FIELDS: dict[str, Mutate] = {
    "event_id": _set("event_id"),
    "event_type": _set("event_type"),
    "sensitivity": _set("sensitivity"),
    "source.service_kind": _set("source", "service_kind"),
    "identifiers[0].scheme": _set("identifiers", 0, "scheme"),
    "payload.to_service_kind": _set("payload", "to_service_kind"),
    "payload.decline_reason": _set("payload", "decline_reason"),
}


def _body() -> dict[str, Any]:
    event = dataclasses.replace(
        referral("declined", reason="r", decided_by="duty", outcome="o",
                 decline_reason="CAPACITY"),
        causation_id="c0ffee00-0000-4000-8000-000000000000", extra={"prison": "LEI"},
        identifiers=(Identifier("nhs_number", NHS), Identifier("local_id", "L-1")))
    return event_to_json(event)


def _fields(problems: list) -> set[tuple[str, str]]:
    return {(p.field, p.code) for p in problems}


@given(st.sampled_from(sorted(TEXT_FIELDS)), unstorable)
def test_a_text_field_that_cannot_be_stored_is_refused_with_its_path(
        field: str, text: str) -> None:
    body = _body()
    TEXT_FIELDS[field](body, text)
    event, problems = parse_event(body, NOW, TOLERANCE)
    assert event is None
    assert (field, "invalid_character") in _fields(problems)
    for problem in problems:  # the reason names the character, never the text
        assert text not in problem.reason and text not in problem.field
        json.dumps(problem.reason, ensure_ascii=False).encode()  # the answer can be encoded


@given(st.sampled_from(sorted(CODED_FIELDS)), unstorable)
def test_a_coded_field_that_cannot_be_stored_is_refused_at_its_path(
        field: str, text: str) -> None:
    body = _body()
    CODED_FIELDS[field](body, text)
    event, problems = parse_event(body, NOW, TOLERANCE)
    assert event is None
    assert field in {p.field for p in problems}


@given(st.sampled_from(["event_id", "event_type", "sensitivity", "causation_id",
                        "source.agency", "source.system", "identifiers[0].scheme",
                        "identifiers[0].value", "payload.referral_id", "payload.reason",
                        "extra.prison", "extra"]), unstorable)
def test_the_processor_check_refuses_the_same_fields(field: str, text: str) -> None:
    """``event_problems`` alone, as the processor runs it on messages straight from Kafka."""
    event = dataclasses.replace(referral("made", reason="r"), causation_id="c-1",
                                extra={"prison": "LEI"})
    event = _replace(event, field, text)
    problems = event_problems(event)
    assert (field, "invalid_character") in _fields(problems)
    assert all(text not in p.reason for p in problems)


def _replace(event: AgencyEvent, field: str, text: str) -> AgencyEvent:
    if field == "extra":
        return dataclasses.replace(event, extra={**event.extra, text: "x"})
    if field.startswith("extra."):
        return dataclasses.replace(event, extra={field[6:]: text})
    if field.startswith("identifiers[0]."):
        identifier = dataclasses.replace(event.identifiers[0], **{field[15:]: text})
        return dataclasses.replace(event, identifiers=(identifier,))
    if "." in field:
        part, name = field.split(".")
        return dataclasses.replace(event, **{
            part: dataclasses.replace(getattr(event, part), **{name: text})})
    return dataclasses.replace(event, **{field: text})


CLOUDEVENT_FIELDS: dict[str, Mutate] = {
    "source": _set("source"),
    "subject": _set("subject"),
    "data.source.system": _set("data", "source", "system"),
    "data.identifiers[0].value": _set("data", "identifiers", 0, "value"),
    "data.payload.contact_id": _set("data", "payload", "contact_id"),
    "data.extra": lambda body, text: body["data"].update(extra={text: "x"}),
}


@given(st.sampled_from(sorted(CLOUDEVENT_FIELDS)), unstorable)
def test_a_cloudevent_that_cannot_be_stored_is_refused_with_its_cloudevent_path(
        field: str, text: str) -> None:
    event = contact("attended")
    native = event_to_json(event)
    body = {"specversion": "1.0", "id": event.event_id, "source": "/agencies/hmp-leeds",
            "type": event.event_type, "time": native["occurred_at"], "subject": NHS,
            "data": {"payload": native["payload"],
                     "identifiers": [{"scheme": "local_id", "value": "L-1"}],
                     "source": {"service_kind": "PRISON", "system": "NOMIS"}}}
    if field == "subject":
        text = f"local_id:{text}"
    CLOUDEVENT_FIELDS[field](body, text)
    parsed, problems = parse_cloudevent(body, NOW, TOLERANCE)
    assert parsed is None
    assert field in {p.field for p in problems}, problems


def test_unknown_field_names_that_cannot_be_shown_are_not_echoed() -> None:
    body = _body()
    body["a\x00b"] = 1
    body["extra"] = {"k" * 101: "x"}
    _, problems = parse_event(body, NOW, TOLERANCE)
    assert {p.field for p in problems} == {"*", "extra"}
    assert all("a\x00b" not in p.field and "k" * 101 not in p.field for p in problems)


def test_content_hash_never_raises_and_keeps_its_value_for_valid_text() -> None:
    event = referral("made", reason="café ✓ 𝄞", event_id="c0ffee00-0000-4000-8000-000000000001")
    assert content_hash(dataclasses.replace(event, extra={"k": "\ud800"})) != content_hash(event)
    # Pinned: receipts recorded before stay comparable (same id, same content: 200, not 409).
    assert content_hash(event) == (
        "9223f028bb326d1e1bae029f1b390bdcbb77bcc666245908e3cccad5a0b7ab07")
