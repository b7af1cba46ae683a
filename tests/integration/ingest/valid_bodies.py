"""Turn a body schemathesis generated into one the gateway must accept, keeping what it can.

JSON Schema cannot say what makes an event acceptable: NHS check digits and identifier
formats, recorded_at not before occurred_at, nothing in the future, source.agency being the
token's agency, the payload family matching event_type, no U+0000 in text. These strategies
keep the generated strings, optional fields, vocabularies and shapes, and repair only those
rules, so the fuzzer reaches the accept path with varied content. What they add comes from
one seeded ``random.Random``: one draw per body, so a batch of many events does not use up
hypothesis' budget of choices (it then avoids such cases).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from services.common.events import (
    EVENT_TYPES,
    PAYLOAD_BY_FAMILY,
    SENSITIVITIES,
    SERVICE_KINDS,
    TRANSITION_KINDS,
)
from services.common.identifiers import (
    make_crn,
    make_nhs_number,
    make_noms_number,
    make_pnc_id,
)

# Events no older than this: "now" moves on while the fuzzer runs, so keep a margin.
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_MAKERS = {"nhs_number": lambda rng: make_nhs_number(rng, "999"), "noms_number": make_noms_number,
           "crn": make_crn, "pnc_id": make_pnc_id}
_PAYLOAD_REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "referral": {"referral_id": ("r-1",), "to_agency": ("leeds-housing",),
                 "to_service_kind": SERVICE_KINDS},
    "transition": {"transition_id": ("t-1",), "kind": TRANSITION_KINDS},
    "discharge": {},
    "contact": {"contact_id": ("c-1",)},
    "identity": {},  # the other record's identifier: made valid in _payload
}


def _text(value: Any, fallback: str, limit: int = 200) -> str:
    """The generated string without U+0000 (PostgreSQL cannot store it), or the fallback."""
    cleaned = value.replace("\x00", "")[:limit] if isinstance(value, str) else ""
    return cleaned if cleaned.strip() else fallback


def _moment(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return moment if _EARLIEST <= moment <= datetime.now(UTC) - timedelta(minutes=1) else None


def _times(rng: random.Random, occurred: Any, recorded: Any) -> tuple[str, str]:
    start = _moment(occurred) or datetime(2000, 1, 1, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(25 * 365 * 86400), microseconds=rng.randrange(1_000_000))
    end = _moment(recorded)
    if end is None or end < start:
        end = start + timedelta(seconds=rng.randrange(3 * 86400))
    return start.isoformat(), end.isoformat()


def _identifiers(generated: Any, rng: random.Random) -> list[dict[str, str]]:
    """Generated identifiers with valid values for their schemes (unknown schemes: NHS)."""
    items = generated if isinstance(generated, list) else []
    fixed = []
    for item in items[:20]:
        scheme = item.get("scheme") if isinstance(item, dict) else None
        if scheme == "local_id":
            fixed.append({"scheme": scheme, "value": _text(item.get("value"), "L-1", 64)})
        else:
            scheme = scheme if scheme in _MAKERS else "nhs_number"
            fixed.append({"scheme": scheme, "value": _MAKERS[scheme](rng)})
    return fixed


def _payload(rng: random.Random, generated: Any, family: str) -> dict[str, Any]:
    payload = dict(generated) if isinstance(generated, dict) else {}
    if payload.get("family") != family:  # the other family's fields do not fit: start again
        payload = {}
    payload["family"] = family
    for name, value in list(payload.items()):
        if isinstance(value, str) and name != "family":
            payload[name] = _text(value, "x")
    for name, choices in _PAYLOAD_REQUIRED[family].items():
        if payload.get(name) is None:
            payload[name] = rng.choice(choices)
    if family == "identity":  # the other record's identifier must be a valid one
        payload["other_scheme"] = scheme = rng.choice(sorted(_MAKERS))
        payload["other_value"] = _MAKERS[scheme](rng)
    if isinstance(payload.get("scheduled_for"), str):
        try:
            date.fromisoformat(payload["scheduled_for"])
        except ValueError:
            payload["scheduled_for"] = "2026-01-01"
    return payload


def _extra(generated: Any) -> dict[str, str]:
    items = generated.items() if isinstance(generated, dict) else ()
    return {_text(k, "key", 100): _text(v, "value", 1000) for k, v in items if isinstance(v, str)}


def _event_type(rng: random.Random, generated: Any, payload: Any) -> str:
    """The generated type, or one of the generated payload's family (keeping the payload)."""
    family = payload.get("family") if isinstance(payload, dict) else None
    if family not in PAYLOAD_BY_FAMILY:
        family = generated.split(".", 1)[0] if generated in EVENT_TYPES else None
    if generated in EVENT_TYPES and (family is None or generated.startswith(f"{family}.")):
        return str(generated)
    return rng.choice(sorted(t for t in EVENT_TYPES
                             if family is None or t.startswith(f"{family}.")))


def _source(generated: Any) -> dict[str, Any]:
    source = dict(generated) if isinstance(generated, dict) else {}
    kept = {name: _text(source.get(name), "x") for name in ("system", "team", "area")
            if isinstance(source.get(name), str)}
    kind = source.get("service_kind")
    return {"service_kind": kind if kind in SERVICE_KINDS else "PRISON",
            "system": kept.pop("system", "NOMIS"), **kept}


def _common(rng: random.Random, generated: dict[str, Any], family: str) -> dict[str, Any]:
    """What both forms share: causation, sensitivity, payload, extra."""
    fields: dict[str, Any] = {"payload": _payload(rng, generated.get("payload"), family),
                              "extra": _extra(generated.get("extra"))}
    if isinstance(generated.get("causation_id"), str):
        fields["causation_id"] = _text(generated["causation_id"], "cause")
    if generated.get("sensitivity") in SENSITIVITIES:
        fields["sensitivity"] = generated["sensitivity"]
    return fields


def native_event(generated: Any, agency: str, rng: random.Random) -> dict[str, Any]:
    """An ``application/json`` event from a generated one."""
    body = generated if isinstance(generated, dict) else {}
    event_type = _event_type(rng, body.get("event_type"), body.get("payload"))
    occurred, recorded = _times(rng, body.get("occurred_at"), body.get("recorded_at"))
    event = {"event_id": str(uuid.uuid4()), "event_type": event_type,
             "occurred_at": occurred, "recorded_at": recorded,
             "source": {"agency": agency, **_source(body.get("source"))},
             "identifiers": _identifiers(body.get("identifiers"), rng) or [
                 {"scheme": "nhs_number", "value": make_nhs_number(rng, "999")}],
             **_common(rng, body, event_type.split(".", 1)[0])}
    if body.get("schema_version") in (1, 2, None) and "schema_version" in body:
        event["schema_version"] = body["schema_version"]
    return event


def cloudevent(generated: Any, agency: str, rng: random.Random) -> dict[str, Any]:
    """An ``application/cloudevents+json`` event from a generated one."""
    body = generated if isinstance(generated, dict) else {}
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    event_type = _event_type(rng, body.get("type"), data.get("payload"))
    occurred, recorded = _times(rng, body.get("time"), data.get("recorded_at"))
    fixed_data: dict[str, Any] = {"source": _source(data.get("source")),
                                  "identifiers": _identifiers(data.get("identifiers"), rng),
                                  **_common(rng, data, event_type.split(".", 1)[0])}
    if "recorded_at" in data:
        fixed_data["recorded_at"] = recorded
    event: dict[str, Any] = {
        "specversion": "1.0", "id": str(uuid.uuid4()), "type": event_type, "time": occurred,
        "source": rng.choice([f"/agencies/{agency}", agency]), "data": fixed_data}
    if "subject" in body or not fixed_data["identifiers"]:
        nhs = make_nhs_number(rng, "999")  # a bare subject is an NHS number
        event["subject"] = rng.choice([nhs, f"nhs_number:{nhs}",
                                       f"noms_number:{make_noms_number(rng)}"])
    if "dataschema" in body:
        event["dataschema"] = _text(body["dataschema"], "", 150) + "agency_event.v2.avsc"
    if "datacontenttype" in body:
        event["datacontenttype"] = "application/json"
    return event


def accepted_body(generated: Any, path: str, media_type: str | None, agency: str
                  ) -> st.SearchStrategy[Any]:
    """A body `path` must accept, built from `generated`, for `media_type`."""
    return st.integers(0, 2**32).map(
        lambda seed: _accepted(generated, path, media_type, agency, random.Random(seed)))


def _accepted(generated: Any, path: str, media_type: str | None, agency: str,
              rng: random.Random) -> Any:
    cloud = media_type is not None and media_type.startswith("application/cloudevents")
    one = cloudevent if cloud else native_event
    if path != "/v1/events:batch":
        return one(generated, agency, rng)
    # An empty generated batch still becomes one event: a batch made valid must reach the
    # accept path, or a run can end with no accepted batch of one media type.
    if cloud:
        return [one(item, agency, rng) for item in _list(generated) or [{}]]
    return {"events": [one(item, agency, rng) for item in _list(
        generated.get("events") if isinstance(generated, dict) else None) or [{}]]}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
