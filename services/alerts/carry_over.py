"""A rebuild's alerts get the duty teams' work carried over.

The rules rebuild alerts from the archive: raised, resolved, moved, reopened. What duty
teams did with them (acknowledged, assigned, commented, snoozed, escalated...) is not in
the archive: it is in the alerts topic and the live alert history. Before a rebuilt alert
table is compared or switched in, every such action the live history holds and the
shadow's lacks is folded into the shadow, in the order of the versions it was based on,
with no delivery (nothing reaches a team, no timer is set: the live timers stay).

The rebuilt raises were routed with today's routes; each keeps the team its live raise went
to (routes changed since apply to new alerts only), before the work is folded on top.
"""

from __future__ import annotations

import asyncpg

from projections.queries import alerts as alerts_sql
from projections.queries import rebuild as sql
from services.alerts.actions import recorded_event
from services.alerts.domain import Alert
from services.alerts.events import AlertEvent
from services.alerts.read_model import project_alert_events


async def carry_over_duty_work(conn: asyncpg.Connection, live: str) -> int:
    """Fold the live duty work into the alerts ``conn`` writes (its search path puts the
    shadow first); ``live`` is the live schema, already quoted. Returns how many."""
    async with conn.transaction():
        await conn.execute(sql.KEEP_RAISED_TEAMS.format(live=live))
        rows = await conn.fetch(sql.DUTY_WORK_TO_CARRY.format(live=live))
        if not rows:
            return 0
        ids = sorted({r["alert_id"] for r in rows})
        alerts = {r["alert_id"]: Alert(**dict(r))
                  for r in await conn.fetch(alerts_sql.ALERTS_TO_FOLD, ids)}
        events: list[AlertEvent] = [
            recorded_event(alerts[r["alert_id"]], r["alert_event_id"], r["action"], r["at"],
                           r["actor"], resolution=r["resolution"], detail=r["detail"],
                           team_id=r["team_id"], tier=r["tier"], assignee=r["assignee"],
                           until=r["until"], comment=r["comment"], version=r["version"])
            for r in rows if r["alert_id"] in alerts]
        await project_alert_events(conn, events)
    return len(events)
