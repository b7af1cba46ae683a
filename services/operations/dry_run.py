"""The dry-run sink: every read model folded over the archive in memory, nothing written.

The same folds the live pipeline applies (the registry's, in the order the pipeline applied
the events, partition by partition), with their states held in memory between batches
instead of loaded from and saved to PostgreSQL. Nothing is written and nothing is published:
the alert events the rules raise are counted and returned, for a "what would happen" report
(and for the rule what-if of the operations issue). With the rules it ends with the sweep the
deadline timer would have made by ``now``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from projections.queries import rebuild as sql
from services.alerts.events import AlertEvent
from services.processor.domain.rules import Outcome, RulePack, fire_due
from services.processor.opening import Opener
from services.processor.read_models import Registry
from services.processor.sources import ArchiveSource


@dataclass
class DryRun:
    events: int = 0
    changes: Counter[str] = field(default_factory=Counter)   # read model -> changes folded
    alert_events: list[AlertEvent] = field(default_factory=list)

    def alerts_by_rule(self) -> Counter[tuple[str, str]]:
        return Counter((a.rule_id, a.action) for a in self.alert_events)


async def dry_run(pool: asyncpg.Pool, registry: Registry, topic: str, pack: RulePack,
                  now: datetime, opener: Opener, batch_size: int = 5000) -> DryRun:
    source = ArchiveSource(topic, opener)
    states: dict[str, dict[Any, Any]] = {m.name: {} for m in registry.models}
    result = DryRun()
    async with pool.acquire() as conn:
        partitions = [r["kafka_partition"] for r in await conn.fetch(sql.ARCHIVED_PARTITIONS,
                                                                     topic)]
        for partition in partitions:
            seq = 0
            while True:
                chunk = await source.read(conn, partition, seq, batch_size)
                if chunk.reached is None:
                    break
                seq = chunk.reached
                events = [r.event for _, r in chunk.events]
                result.events += len(events)
                for model in registry.models:
                    changes = model.fold_all(states[model.name], events)
                    result.changes[model.name] += len(changes)
                    result.alert_events += [a for c in changes if isinstance(c, Outcome)
                                            for a in c.alert_events]
    if "rules" in registry.names:  # what the deadline timer would have fired by now
        for state in states["rules"].values():
            result.alert_events += [alert for _, alert in
                                    fire_due(pack, state.expectations, now)]
    return result
