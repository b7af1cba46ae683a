"""`joinedup replay --since T`: the read models re-run over everything recorded from T, in
memory, and what they would produce from T, next to what the live tables hold.

"From T" is by recorded-at (when the agency recorded the event; the archive is indexed by
it): the events recorded before T are folded first, silently, to give each read model the
state it had, and the changes and alert events the events recorded from T produce are
counted. Events are folded in the order the live pipeline applied them (the archive's
``seq``, or the log's offsets), not sorted by recorded-at, so a late-arriving event recorded
before T but applied after a later one is folded where it was applied and counted as state.
The deadline sweep at ``now`` (``--at``, else the stream clock's end) counts the alerts due
from T.

Nothing live is read but the history and, for the comparison, the alerts the live read
model raised from T; nothing at all is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from projections.queries import replay as sql
from services.common.events import AgencyEvent
from services.operations.dry_run import DryRun, Folding, History
from services.processor.domain.rules import RulePack
from services.processor.read_models import Registry


def runs(events: list[AgencyEvent], since: datetime
         ) -> Iterator[tuple[bool, list[AgencyEvent]]]:
    """The batch cut into runs, in order, each (recorded from ``since``?, its events)."""
    start = 0
    for i in range(1, len(events) + 1):
        if i == len(events) or ((events[i].recorded_at >= since)
                                != (events[start].recorded_at >= since)):
            yield events[start].recorded_at >= since, events[start:i]
            start = i


@dataclass
class Replay:
    since: datetime
    now: datetime
    before: DryRun = field(default_factory=DryRun)    # folded for state only
    replayed: DryRun = field(default_factory=DryRun)  # recorded from ``since``
    #: rule -> alerts raised at or after ``since``: by the replay, and as the live tables hold
    raised: Counter[str] = field(default_factory=Counter)
    raised_live: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, object]:
        rules = sorted(self.raised.keys() | self.raised_live.keys())
        return {
            "since": self.since.isoformat(), "now": self.now.isoformat(),
            "events_before": self.before.events, "events_replayed": self.replayed.events,
            "changes": dict(sorted(self.replayed.changes.items())),
            "alert_events": [{"rule": rule, "action": action, "events": n} for
                             (rule, action), n in sorted(self.replayed.alerts_by_rule().items())],
            "raised_since": [{"rule": r, "replayed": self.raised[r], "live": self.raised_live[r]}
                             for r in rules],
        }


async def replay(pool: asyncpg.Pool, registry: Registry, history: History, pack: RulePack,
                 since: datetime, at: datetime | None = None) -> Replay:
    folding = Folding(registry)
    before, replayed = DryRun(), DryRun()
    clock: datetime | None = None
    async with pool.acquire() as conn:
        async for batch in history(conn):
            for recent, events in runs(batch, since):
                folding.fold(events, replayed if recent else before)
            latest = max(e.recorded_at for e in batch)
            clock = latest if clock is None or latest > clock else clock
        live = (await conn.fetch(sql.RAISED_SINCE, since)
                if "rules" in registry.names else [])
    now = at or clock or since
    for alert in folding.sweep(pack, now):
        (replayed if alert.at >= since else before).alert_events.append(alert)
    result = Replay(since, now, before, replayed)
    if "rules" in registry.names:  # without the rules there is nothing to compare
        result.raised.update(a.rule_id for a in before.alert_events + replayed.alert_events
                             if a.action == "raised" and a.at >= since)
        result.raised_live.update({r["rule_id"]: r["raised"] for r in live})
    return result
