"""The alert read model (`alert`, `alert_history`): its one owner, and the one way an alert
event is applied to it, exactly once per alert event id (the history is keyed by it).

Two processes apply alert events: the rules' own transaction, for latency (a duty team sees
an alert the moment the batch that raised it commits), and the alerts-topic projector, for
everything on the topic (the same events again, as no-ops, and later duty-team actions).
Both go through ``project_alert_events``.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from projections.queries import alerts as sql
from services.alerts.events import AlertEvent
from services.alerts.outbox import add_to_outbox


async def record_alert_events(conn: asyncpg.Connection, alerts: Sequence[AlertEvent]) -> None:
    """Alert events join the outbox (published to the alerts topic after commit) and the alert
    read model, in the same transaction as the expectations that produced them: a duty team
    sees an alert the moment it is committed, without waiting for the topic round trip. The
    alert projector applies the same events from the topic as no-ops (alert_history is keyed
    by alert event id); the topic is what other consumers, and later duty-team actions, use."""
    await add_to_outbox(conn, alerts)
    await project_alert_events(conn, alerts)


async def project_alert_events(conn: asyncpg.Connection, events: Sequence[AlertEvent]) -> int:
    """Apply alert events to the read model once each; returns how many were new."""
    if not events:
        return 0
    async with conn.transaction():
        new = {r["alert_event_id"] for r in await conn.fetch(
            sql.RECORD_HISTORY, [e.alert_event_id for e in events], [e.alert_id for e in events],
            [e.action for e in events], [e.at for e in events], [e.actor for e in events],
            [e.resolution for e in events],
            [e.evidence_event_id or e.resolving_event_id for e in events],
            [e.evidence_agency for e in events], [e.detail for e in events])}
        fresh = [e for e in events if e.alert_event_id in new]
        raised = [(e.alert_id, e.person_key, e.rule_id, e.rule_version, e.severity,
                   e.duty_team, e.title, e.explanation, e.source_reference, e.trigger_event_id,
                   e.expected, e.window_start, e.due_at, e.at)
                  for e in fresh if e.action == "raised"]
        resolved = [(e.alert_id, e.at, e.resolution, e.resolving_event_id)
                    for e in fresh if e.action == "resolved"]
        # Raised before resolved: an alert raised and resolved in one batch ends resolved.
        if raised:
            await conn.executemany(sql.OPEN_ALERT, raised)
        if resolved:
            await conn.executemany(sql.RESOLVE_ALERT, resolved)
        if joined := sorted({e.alert_id for e in fresh if e.action == "evidence"}):
            await conn.execute(sql.COUNT_EVIDENCE, joined)
    return len(new)
