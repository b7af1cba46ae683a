"""CloudEvents extension attributes (kept in ``extra``) and binary content mode (``ce-*``
headers read by the SDK's HTTP binding into the structured form)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain.parsing import content_hash, parse_cloudevent
from services.ingest.entrypoints.binary_mode import is_binary, parse_binary, structured
from services.ingest.entrypoints.body import RequestRefused
from tests.factories import T0
from tests.unit.ingest.test_parsing import _cloudevent

NOW = T0 + timedelta(days=1)
TOLERANCE = timedelta(minutes=5)
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
# NHS England's notification service: `filtering` is an object, and there is no `dataref`.
NHS_FILTERING = {"filtering": {"subscriptionId": "s-1", "generalPractitioner": ["Y12345"]}}


def parsed(**changes: Any) -> Any:  # each call is a new event (a new id)
    event, problems = parse_cloudevent(_cloudevent(**changes), NOW, TOLERANCE)
    assert problems == []
    return event


def test_extension_attributes_are_kept_in_extra() -> None:
    event = parsed(dataref="https://agency.example/events/1", traceparent=TRACE,
                   recordedtime="2026-03-02T09:00:05Z", partitionkey="p-1", **NHS_FILTERING)
    assert event.extra == {
        "ce_dataref": "https://agency.example/events/1", "ce_traceparent": TRACE,
        "ce_recordedtime": "2026-03-02T09:00:05Z", "ce_partitionkey": "p-1",
        "ce_filtering": json.dumps(NHS_FILTERING["filtering"], sort_keys=True,
                                   separators=(",", ":"))}


def test_missing_dataref_and_null_extensions_are_fine() -> None:
    assert parsed(**NHS_FILTERING).extra.keys() == {"ce_filtering"}
    assert parsed(dataref=None).extra == {}


@given(st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True),
       st.one_of(st.text(max_size=50), st.integers(), st.booleans(),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)))
def test_any_spec_named_extension_is_accepted(name: str, value: Any) -> None:
    if name in {"specversion", "id", "source", "type", "time", "subject", "dataschema",
                "datacontenttype", "data"}:
        return  # context attributes, not extensions
    event, problems = parse_cloudevent(_cloudevent(**{name: value}), NOW, TOLERANCE)
    if "\x00" in str(value) or any("\ud800" <= c <= "\udfff" for c in str(value)):
        assert event is None and problems[0].field == name
    else:
        assert problems == [] and event is not None
        assert event.extra[f"ce_{name}"] == (value if isinstance(value, str) else json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


@pytest.mark.parametrize("name", ["Dataref", "trace-parent", "x_y", "caf\u00e9"])
def test_names_against_the_naming_rule_are_refused_by_name(name: str) -> None:
    event, problems = parse_cloudevent(_cloudevent(**{name: "v"}), NOW, TOLERANCE)
    assert event is None and [p.field for p in problems] in ([name], ["*"])


def test_problems_never_repeat_an_extension_value() -> None:
    secret = "9434765919" * 200
    event, problems = parse_cloudevent(_cloudevent(dataref=secret), NOW, TOLERANCE)
    assert event is None and problems[0].field == "dataref"
    assert "9434765919" not in repr(problems)


def test_an_extension_clashing_with_an_extra_key_is_refused() -> None:
    body = _cloudevent(dataref="a")
    body["data"]["extra"] = {"ce_dataref": "b"}
    event, problems = parse_cloudevent(body, NOW, TOLERANCE)
    assert event is None and [(p.field, p.code) for p in problems] == [
        ("dataref", "duplicate_attribute")]


def test_a_retry_with_new_trace_context_is_the_same_content() -> None:
    body = _cloudevent(traceparent=TRACE, tracestate="a=1")
    hashes = []
    for changes in ({}, {"traceparent": TRACE.replace("b7ad", "c8be"), "tracestate": "a=2"},
                    {"dataref": "https://x.example/1"}):
        event, _ = parse_cloudevent({**body, **changes}, NOW, TOLERANCE)
        assert event is not None
        hashes.append(content_hash(event))
    assert hashes[0] == hashes[1] != hashes[2]


def _binary(body: dict[str, Any], **extensions: Any) -> tuple[dict[str, str], Any]:
    """The headers and body the SDK's own writer makes for a structured event."""
    attributes = {k: v for k, v in body.items() if k != "data"}
    attributes["time"] = datetime.fromisoformat(attributes["time"])
    message = to_binary_event(CloudEvent({**attributes, **extensions,
                                          "datacontenttype": "application/json"},
                                         body["data"]))
    return message.headers, json.loads(message.body)


def test_binary_mode_is_the_structured_event() -> None:
    body = _cloudevent(subject="noms_number:A1234BC")
    headers, data = _binary(body, dataref="https://agency.example/e/1", traceparent=TRACE)
    assert is_binary(headers) and not is_binary({"content-type": "application/json"})
    event, problems = parse_binary(structured(headers, "application/json", data), NOW,
                                   TOLERANCE)
    expected, _ = parse_cloudevent({**body, "dataref": "https://agency.example/e/1",
                                    "traceparent": TRACE}, NOW, TOLERANCE)
    assert problems == [] and event == expected


def test_binary_mode_percent_decodes_header_values() -> None:
    headers, data = _binary(_cloudevent(), dataref="https://agency.example/a b%")
    assert "%20" in headers["ce-dataref"]
    event, _ = parse_binary(structured(headers, "application/json", data), NOW, TOLERANCE)
    assert event is not None and event.extra["ce_dataref"] == "https://agency.example/a b%"


def test_binary_mode_never_makes_up_an_id_or_a_time() -> None:
    headers, data = _binary(_cloudevent())
    for missing in ("ce-id", "ce-time"):
        sent = {k: v for k, v in headers.items() if k != missing}
        event, problems = parse_binary(structured(sent, "application/json", data), NOW,
                                       TOLERANCE)
        assert event is None and [p.field for p in problems] == [missing]


@pytest.mark.parametrize(("change", "field"), [
    ({"ce-source": ""}, "ce-source"), ({"ce-specversion": "0.3"}, "ce-specversion"),
    ({"ce-time": "not a time"}, "ce-time"), ({"ce-Bad_Name": "x"}, "ce-bad_name"),
])
def test_binary_mode_header_problems_name_the_header(change: dict[str, str], field: str
                                                     ) -> None:
    headers, data = _binary(_cloudevent())
    try:
        body = structured({**headers, **change}, "application/json", data)
    except RequestRefused as refused:
        problems = refused.problems
    else:
        problems = parse_binary(body, NOW, TOLERANCE)[1]
    assert [p.field for p in problems] == [field]
    assert all(v not in repr(problems) for v in change.values() if v)


def test_binary_mode_body_problems_are_paths_in_the_body() -> None:
    headers, data = _binary(_cloudevent())
    data["identifiers"][0]["value"] = "123"
    event, problems = parse_binary(structured(headers, "application/json", data), NOW,
                                   TOLERANCE)
    assert event is None and problems[0].field == "identifiers[0].value"
    assert "123" not in repr(problems)
