"""A subject-access report: everything joinedup holds about one person, where each record
came from, whom it was shared with and who read it (UK GDPR article 15), as JSON and as a
readable HTML document.

It is built from the person's own records only: their identifiers, the events archived
under them (as the agencies sent them), the read models, their governance record and the
access audit of their records. Producing it is itself audited.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import asyncpg
from jinja2 import Environment, select_autoescape

from projections.queries import reads as q
from services.common.serde.agency_event import decode_event
from services.common.serde.sealing import key_refs, unseal_event
from services.identity.key_ring import KeyRing
from services.reads.adapters import audit_log, governance_log
from services.reads.domain.audit import Caller, action_record
from services.reads.domain.governance import PersonRecord
from services.reads.domain.views import service_category
from services.reads.lookup import ReadRefused, current_person


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


async def _records(conn: asyncpg.Connection, rows: list[asyncpg.Record],
                   summaries: dict[str, str], key_ring: KeyRing) -> list[dict[str, Any]]:
    """The archived events, opened with the person's keys (erased fields read "erased")."""
    sealed = [decode_event(bytes(row["body"])) for row in rows]
    keys = await key_ring.keys(conn, {r for e in sealed for r in key_refs(e)}, hold=False)
    out = []
    for row, event in zip(rows, (unseal_event(e, keys) for e in sealed), strict=True):
        out.append({
            "event_id": event.event_id, "event_type": event.event_type,
            "summary": summaries.get(event.event_id, ""),
            "occurred_at": event.occurred_at, "recorded_at": event.recorded_at,
            "category": event.sensitivity,
            "source": {"agency": event.source.agency,
                       "service_kind": event.source.service_kind,
                       "system": event.source.system, "team": event.source.team},
            "identifiers": [{"scheme": i.scheme, "value": i.value} for i in event.identifiers],
            "details": dataclasses.asdict(event.payload),
            "additional_information": dict(event.extra),
            "received": {"topic": row["kafka_topic"], "archived_at": row["archived_at"]}})
    return out


def _governance(record: PersonRecord) -> dict[str, Any]:
    return {
        "consents": [{"consent_id": c.consent_id, **dataclasses.asdict(c.consent),
                      "recorded_at": c.recorded_at} for c in record.consents.values()],
        "episodes": [dataclasses.asdict(e) for e in record.episodes.values()],
        "grants": [dataclasses.asdict(g) for g in record.grants.values()],
        "disclosures": [{"disclosure_id": d.disclosure_id, "entry_agency": d.entry_agency,
                         **dataclasses.asdict(d.disclosure), "recorded_at": d.recorded_at}
                        for d in record.disclosures.values()],
    }


def _shares(record: PersonRecord, access: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whom the person's records were shared with: each disclosure, and each read in which
    another agency was shown entries it did not record itself (and on what grounds)."""
    shares: list[dict[str, Any]] = [
        {"at": d.recorded_at, "to_agency": d.disclosure.to_agency, "how": "disclosure",
         "grounds": d.disclosure.legal_basis, "items": [d.disclosure.event_id]}
        for d in record.disclosures.values()]
    for a in access:
        detail = a["detail"]
        if detail.get("shared"):
            grounds = sorted(k for k in detail.get("because", {})
                             if k != "recorded by the reader's agency")
            shares.append({"at": a["at"], "to_agency": a["agency_id"],
                           "how": a["action"], "grounds": ", ".join(grounds),
                           "items": list(detail["shared"])})
    return sorted(shares, key=lambda s: s["at"])


async def report(conn: asyncpg.Connection, caller: Caller, person_id: str,
                 key_ring: KeyRing) -> dict[str, Any]:
    """The report, as plain JSON-able data (the call is audited)."""
    async with conn.transaction(isolation="repeatable_read"):
        person = await current_person(conn, person_id)
        if person is None:
            raise ReadRefused("not_found", "no such person")
        timeline = await conn.fetch(q.ALL_TIMELINE, person)
        summaries = {r["event_id"]: r["summary"] for r in timeline}
        records = await _records(conn, await conn.fetch(q.ARCHIVED_BODIES, person),
                                 summaries, key_ring)
        record = await governance_log.load_record(conn, person, key_ring)
        access = await audit_log.of_person(conn, person)
        built = {
            "person_id": person,
            "generated_at": datetime.now(UTC),
            "generated_by": caller.operator or caller.reader.practitioner,
            "identifiers": [dict(r) for r in await conn.fetch(q.IDENTIFIERS_OF_PERSON,
                                                              person)],
            "records": records,
            "caseload": [{**dict(r), "category": service_category(r["service_kind"])}
                         for r in await conn.fetch(q.CASELOAD, person)],
            "referrals": [{k: v for k, v in dict(r).items() if k != "sensitivities"}
                          for r in await conn.fetch(q.REFERRALS, person)],
            "alerts": [dict(r) for r in await conn.fetch(q.ALERTS, person)],
            "governance": _governance(record),
            "shared_with": _shares(record, access),
            "access_log": [{k: a[k] for k in ("at", "reader_kind", "agency_id", "username",
                                              "team_id", "role", "operator", "action",
                                              "purpose", "outcome")} for a in access],
        }
        await audit_log.write(conn, action_record(
            caller, "subject_access", person, "subject_access", "ok",
            {"records": len(records), "reads": len(access)}))
    return dict(_jsonable(built))


def render_html(report_: dict[str, Any]) -> str:
    template = resources.files("services.reads").joinpath(
        "templates/subject_access.html.j2").read_text()
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(template).render(r=report_)
