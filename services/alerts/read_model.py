"""The alert read model (`alert`, `alert_history`): its one owner, and the one way an alert
event is applied to it, exactly once per alert event id (the history is keyed by it).

Two processes apply alert events: the rules' own transaction, for latency (a duty team sees
an alert the moment the batch that raised it commits), and the alerts-topic projector, for
everything on the topic (the same events again, as no-ops, and later duty-team actions).
Both go through ``project_alert_events``, which folds them with the one pure fold of
``services/alerts/domain.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import asyncpg

from projections.queries import alerts as sql
from services.alerts.domain import Alert, fold_alert_events
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
    """Apply alert events to the read model once each; returns how many were new.

    The history, keyed by alert event id, says which events are new (as the event archive
    does for agency events); only those are folded (``services/alerts/domain.py``) into
    their alerts, loaded locked (in id order, so two writers wait rather than deadlock) and
    written back."""
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
        if not fresh:
            return 0
        ids = sorted({e.alert_id for e in fresh})
        alerts: dict[str, Alert | None] = {
            r["alert_id"]: Alert(**dict(r)) for r in await conn.fetch(sql.ALERTS_TO_FOLD, ids)}
        changed = fold_alert_events(alerts, fresh)
        if changed:
            columns = [f.name for f in dataclasses.fields(Alert)]
            await conn.execute(sql.SAVE_ALERTS,
                               *([getattr(a, c) for a in changed] for c in columns))
    return len(new)
