"""The alert read model (`alert`, `alert_history`): its one owner, and the one way an alert
event is applied to it, exactly once per alert event id (the history is keyed by it).

Two processes apply alert events: the rules' own transaction, for latency (a duty team sees
an alert the moment the batch that raised it commits), and the alerts-topic projector, for
everything on the topic (the same events again, as no-ops, and later duty-team actions).
Both go through ``project_alert_events``, which folds them with the one pure fold of
``services/alerts/domain.py``.

Live processing also delivers: it passes a ``LiveDelivery``, and each alert event folded joins
the feed of the team it reached (and of the team it left), and the alert's wall-clock timer
is set or cleared (``services/alerts/escalation.py``), in the same transaction. A rebuild,
replay or dry run passes none: it writes the read model and nothing reaches anybody.

A *historical* alert (raised from an onboarding agency's history before its cut-over,
``services/processor/domain/backfill.py``) is recorded (``historical_alert``, beside the read model)
and never delivered: it is not routed to a team, and has no feed row and no timer, so no
stream, webhook or escalation ever sees it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from projections.queries import alerts as sql
from projections.queries import backfill as backfill_sql
from services.alerts.domain import Alert, Step, fold_alert_steps
from services.alerts.escalation import KEEP, EscalationPolicy, Timer, timer_after
from services.alerts.events import AlertEvent
from services.alerts.outbox import add_to_outbox
from services.alerts.routing import Routing
from services.common.settings import Settings
from services.processor.domain.backfill import historical as historical_raise
from services.processor.domain.backfill import noted

_COLUMNS = tuple(f.name for f in dataclasses.fields(Alert))


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LiveDelivery:
    """What only live processing passes: alerts reach teams (feed) and escalate (timers)."""

    policy: EscalationPolicy = field(default_factory=EscalationPolicy)
    clock: Callable[[], datetime] = _wall_clock

    @classmethod
    def from_settings(cls, settings: Settings,
                      clock: Callable[[], datetime] = _wall_clock) -> LiveDelivery:
        return cls(escalation_policy(settings), clock)


def escalation_policy(settings: Settings) -> EscalationPolicy:
    return EscalationPolicy(
        {severity: timedelta(minutes=minutes)
         for severity, minutes in settings.duty_escalate_after_minutes.items()},
        timedelta(minutes=settings.duty_acknowledgement_timeout_minutes))


async def record_alert_events(conn: asyncpg.Connection, alerts: Sequence[AlertEvent],
                              delivery: LiveDelivery | None = None) -> None:
    """Alert events join the outbox (published to the alerts topic after commit) and the alert
    read model, in the same transaction as the expectations that produced them: a duty team
    sees an alert the moment it is committed, without waiting for the topic round trip. The
    alert projector applies the same events from the topic as no-ops (alert_history is keyed
    by alert event id); the topic is what other consumers, and later duty-team actions, use.

    A new alert is routed to its team here (``services/alerts/routing.py``), and the raise
    carries the team: routes changed later apply to new alerts only. A historical alert is
    recorded as such here, and goes to no team."""
    past = await historical_alerts(conn, alerts, record=True)
    if past:
        alerts = [noted(e) if e.action == "raised" and e.alert_id in past else e for e in alerts]
    alerts = await route_raised(conn, alerts, past)
    await add_to_outbox(conn, alerts)
    await project_alert_events(conn, alerts, delivery, past)


async def historical_alerts(conn: asyncpg.Connection, events: Sequence[AlertEvent],
                            record: bool = False) -> set[str]:
    """The ids of the alerts among ``events``'s that are historical; with ``record``, the
    raises found historical are recorded (``historical_alert``)."""
    if not events:
        return set()
    cut_overs = {r["agency"]: r["cut_over"] for r in await conn.fetch(backfill_sql.CUT_OVERS)}
    if not cut_overs:
        return set()
    found = [h for e in events if (h := historical_raise(e, cut_overs)) is not None]
    if found and record:
        await conn.execute(backfill_sql.RECORD_HISTORICAL, [h.alert_id for h in found],
                           [h.agency for h in found], [h.cut_over for h in found],
                           [h.raised_at for h in found])
    ids = {h.alert_id for h in found}
    others = sorted({e.alert_id for e in events} - ids)
    if others:
        ids.update(r["alert_id"] for r in await conn.fetch(backfill_sql.HISTORICAL_AMONG, others))
    return ids


async def route_raised(conn: asyncpg.Connection, events: Sequence[AlertEvent],
                       historical: set[str] | frozenset[str] = frozenset()) -> list[AlertEvent]:
    if not any(e.action == "raised" and e.team_id is None and e.alert_id not in historical
               for e in events):
        return list(events)
    routing = Routing({r["route"]: r["team_id"] for r in await conn.fetch(sql.ROUTES)},
                      frozenset(r["team_id"] for r in await conn.fetch(sql.TEAM_IDS)))
    return [dataclasses.replace(e, team_id=routing.team_for(e.duty_team))
            if e.action == "raised" and e.team_id is None and e.alert_id not in historical
            else e for e in events]


async def project_alert_events(conn: asyncpg.Connection, events: Sequence[AlertEvent],
                               delivery: LiveDelivery | None = None,
                               historical: set[str] | None = None) -> int:
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
            [e.evidence_agency for e in events], [e.detail for e in events],
            [e.team_id for e in events], [e.tier for e in events],
            [e.assignee for e in events], [e.until for e in events],
            [e.comment for e in events], [e.version for e in events])}
        fresh = [e for e in events if e.alert_event_id in new]
        if not fresh:
            return 0
        ids = sorted({e.alert_id for e in fresh})
        alerts: dict[str, Alert | None] = {
            r["alert_id"]: Alert(**dict(r)) for r in await conn.fetch(sql.ALERTS_TO_FOLD, ids)}
        loaded = dict(alerts)
        steps = fold_alert_steps(alerts, fresh)
        changed = {s.after.alert_id: s.after for s in steps
                   if s.after is not None and s.after != s.before}
        if changed:
            await conn.execute(sql.SAVE_ALERTS,
                               *([getattr(a, c) for a in changed.values()] for c in _COLUMNS))
        if delivery is not None:
            if historical is None:
                historical = await historical_alerts(conn, fresh)
            if historical:  # recorded, never delivered
                steps = [s for s in steps if s.event.alert_id not in historical]
                changed = {a: v for a, v in changed.items() if a not in historical}
            await _deliver(conn, steps, loaded, changed, delivery)
    return len(new)


async def _deliver(conn: asyncpg.Connection, steps: Sequence[Step],
                   loaded: dict[str, Alert | None], changed: dict[str, Alert],
                   delivery: LiveDelivery) -> None:
    """The feed rows of what reached (or left) a team, and each changed alert's timer."""
    feed: list[tuple[str, str, str, str, int]] = []
    for step in steps:
        after = step.after
        if after is None:
            continue
        teams = [after.team_id] + ([step.before.team_id] if step.before is not None else [])
        for team in dict.fromkeys(t for t in teams if t is not None):
            feed.append((team, after.alert_id, step.event.alert_event_id, step.event.action,
                         after.version))
    if feed:
        await conn.execute(sql.ADD_TO_FEED, *(list(column) for column in zip(*feed, strict=True)))
    now = delivery.clock()
    timers: list[Timer] = []
    cleared: list[str] = []
    for alert_id, after in changed.items():
        change = timer_after(loaded.get(alert_id), after, now, delivery.policy)
        if change is None:
            cleared.append(alert_id)
        elif isinstance(change, Timer):
            timers.append(change)
        else:
            assert change is KEEP
    if cleared:
        await conn.execute(sql.CLEAR_TIMERS, cleared)
    if timers:
        await conn.execute(sql.SET_TIMERS, [t.alert_id for t in timers],
                           [t.kind for t in timers], [t.due_at for t in timers],
                           [t.version for t in timers])
