"""The access audit in PostgreSQL (append-only: the table refuses updates and deletes)."""

from __future__ import annotations

import json

import asyncpg

from projections.queries import reads as q
from services.reads.domain.audit import AuditRecord


async def write(conn: asyncpg.Connection, record: AuditRecord) -> None:
    reader = record.caller.reader
    role = None if record.caller.kind == "operator" else reader.role
    await conn.execute(q.AUDIT, record.caller.kind, reader.agency or None,
                       reader.practitioner, reader.team, role, record.caller.operator,
                       record.action, record.person_id, record.purpose, record.outcome,
                       json.dumps(record.detail, default=str))


async def of_person(conn: asyncpg.Connection, person_id: str) -> list[dict[str, object]]:
    """Who read or acted on the person's records, oldest first."""
    out = []
    for row in await conn.fetch(q.AUDIT_OF_PERSON, person_id):
        entry = dict(row)
        entry["detail"] = json.loads(entry["detail"])
        out.append(entry)
    return out
