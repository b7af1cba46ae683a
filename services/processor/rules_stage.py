"""The rules inside the batch transaction, and the deadline timer beside it.

Both write expectation changes and alert events (to the outbox) in one transaction; the
alert events are published after commit. `now` for an event is its own recorded-at (the
engine takes the later of that and what it is given), so the result for a person depends
only on that person's events in log order, never on other people's or on timer timing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Protocol

import asyncpg
import structlog

from projections.queries import alerts as alerts_sql
from projections.queries import backfill as backfill_sql
from projections.queries import read_models as positions_sql
from projections.queries import rules as rules_sql
from services.alerts.events import AlertEvent
from services.alerts.read_model import LiveDelivery, record_alert_events
from services.common.db import DATABASE_UNAVAILABLE
from services.common.events import AgencyEvent
from services.common.health import Health
from services.common.jsonable import from_jsonable
from services.common.kafka import BROKER_UNAVAILABLE
from services.identity.codec import IdentityEvent
from services.processor.adapters import rules_store
from services.processor.adapters.store import Received
from services.processor.clock import Clock
from services.processor.domain.backfill import CutOvers
from services.processor.domain.backfill import history_of as history_of_agency
from services.processor.domain.rules import (
    Expectation,
    Marker,
    Outcome,
    PersonRuleState,
    RulePack,
    fire_due,
)
from services.processor.domain.rules.deadlines import released
from services.processor.domain.rules.regrouping import corrected

log = structlog.get_logger("joinedup.rules")

#: the rules read model's name in the registry (read_models/rules.py)
RULES = "rules"


class Publishes(Protocol):
    """What drains the alert outbox after a commit (``AlertPublisher``; nothing in a rebuild)."""

    async def publish(self) -> int: ...


class RuleStage:
    """The store of the rules read model: rule state loaded from PostgreSQL, kept in a
    per-worker cache, written back with the alert events the batch raised.

    The cache holds committed state only (`commit()` after the transaction, `rollback()` if it
    failed) for people on partitions this worker owns; a rebalance clears it. Everything that
    writes a person's rule state in this process (batches and the deadline timer) holds
    `lock`, and other workers never write it (the timer fires owned partitions only), so a
    cached state is never stale. Reading it back costs ~60 µs an event otherwise (jsonb).
    """

    def __init__(self, pack: RulePack, cache_size: int = 200_000,
                 delivery: LiveDelivery | None = None) -> None:
        self.pack = pack
        #: live processing only: alerts reach their teams and escalate (never in a rebuild)
        self.delivery = delivery
        self.lock = asyncio.Lock()
        self._cache: dict[str, PersonRuleState] = {}
        self._pending: dict[str, PersonRuleState] = {}
        self._cache_size = cache_size
        self._lead_teams: dict[str, tuple[str | None, object]] = {}  # as loaded this batch
        #: the onboarding backfills' cut-overs, read in each batch's transaction (a backfill
        #: opened a moment ago counts from the next batch on)
        self._cut_overs: CutOvers = {}

    def commit(self) -> None:
        if len(self._cache) + len(self._pending) > self._cache_size:
            self._cache.clear()  # crude bound: the next batches reload what they need
        self._cache.update(self._pending)
        self._pending.clear()

    def rollback(self) -> None:
        """The batch failed. Its transaction may still have committed (PostgreSQL going away
        can lose the acknowledgement of a COMMIT it carried out), so the cached state of its
        people is dropped too: the next batch reads them back from PostgreSQL rather than
        trusting a cache that may be one batch behind (an expectation fulfilled in the lost
        acknowledgement's batch would otherwise fire as if still open)."""
        self.drop_cached(self._pending)
        self._pending.clear()

    def drop_cached(self, people: Iterable[str] | None = None) -> None:
        """Drop cached state: for `people`, or all of it (a rebalance)."""
        if people is None:
            self._cache.clear()
        else:
            for person in people:
                self._cache.pop(person, None)

    # --- the rules read model's store (see read_models/rules.py) ----------------------------

    async def load(self, conn: asyncpg.Connection, keys: Sequence[str],
                   batch: Sequence[Received]) -> dict[str, PersonRuleState]:
        latest = max(r.event.recorded_at for r in batch)
        self._cut_overs = {r["agency"]: r["cut_over"]
                           for r in await conn.fetch(backfill_sql.CUT_OVERS)}
        missing = [p for p in keys if p not in self._cache]
        states = await rules_store.load_states(conn, sorted(missing), latest, self.pack.horizon)
        states.update((p, self._cache[p]) for p in keys if p in self._cache)
        self._lead_teams = {p: (s.lead_team, s.lead_team_since) for p, s in states.items()}
        return states

    def history_of(self, event: AgencyEvent) -> str | None:
        """The agency whose backfilled history ``event`` is (this batch's record), or None."""
        return history_of_agency(event.source.agency, event.recorded_at, self._cut_overs)

    async def save(self, conn: asyncpg.Connection,
                   states: Mapping[str, PersonRuleState | None], changes: Sequence[Outcome],
                   batch: Sequence[Received]) -> Sequence[AlertEvent]:
        changed: dict[str, Expectation] = {}
        added: list[Marker] = []
        pruned: list[Marker] = []
        alerts: list[AlertEvent] = []
        for outcome in changes:
            changed.update({e.expectation_id: e for e in outcome.changed_expectations})
            added.extend(outcome.new_markers)
            pruned.extend(outcome.pruned_markers)
            alerts.extend(outcome.alert_events)
        pruned_keys = {(m.rule_id, m.role, m.agency, m.event_id) for m in pruned}
        partition_of = {r.event.person_key: r.partition for r in batch}
        await rules_store.save_expectations(conn, changed.values(), partition_of)
        await rules_store.save_markers(
            conn, [m for m in added
                   if (m.rule_id, m.role, m.agency, m.event_id) not in pruned_keys],
            pruned)
        final = {p: s for p, s in states.items() if s is not None}
        await rules_store.save_lead_teams(conn, [
            s for p, s in final.items()
            if (s.lead_team, s.lead_team_since) != self._lead_teams.get(p, (None, None))])
        await record_alert_events(conn, alerts, self.delivery)
        self._pending.update(final)  # a regroup in the same transaction saves again
        return alerts

    def committed(self) -> None:
        self.commit()

    def rolled_back(self) -> None:
        self.rollback()

    def reset(self) -> None:
        self._pending.clear()
        self.drop_cached()

    async def forget(self, conn: asyncpg.Connection, people: Sequence[str]) -> None:
        """A regroup folds these people's events again: their rule state goes (their alerts
        stay: an alert is a duty team's record, brought in line by ``reconcile``)."""
        await conn.execute(rules_sql.FORGET_RULE_STATE, people)
        self.drop_cached(people)

    async def reconcile(self, conn: asyncpg.Connection, person: str, partition: int,
                        forgotten: Sequence[str], change: IdentityEvent) -> list[AlertEvent]:
        """After a regroup folded ``person``'s events again: bring every alert of the
        people regrouped, and of the expectations ``person`` now has, in line with its
        expectation (``domain/rules/regrouping.py``).
        Each correction names the identity change, so a replay makes the very same events.
        (An expectation still open with no alert yet is left to the deadline timer.)"""
        state = (await rules_store.load_states(conn, [person], change.at, None))[person]
        now = {e.expectation_id: e for e in state.expectations}
        rows = await conn.fetch(alerts_sql.ALERTS_TO_RECONCILE, list(forgotten), list(now))
        again: list[Expectation] = []
        events: list[AlertEvent] = []
        for row in rows:
            expectation = now.get(row["alert_id"])
            if expectation is None:  # its trigger is another person's: their regroup
                continue
            saved, corrections = corrected(expectation, row["person_key"], row["status"],
                                           person, change.change_id, change.at)
            again += [saved] if saved is not None else []
            events += corrections
        await rules_store.save_expectations(conn, again, {person: partition})
        await record_alert_events(conn, events, self.delivery)
        self.drop_cached([person])
        return events


class DeadlineWatch:
    """Fires expectations whose deadline has passed, even when no event ever arrives.

    A Faust timer calls `tick()`; PostgreSQL holds the deadlines, so a restart, a second
    worker or a replay loses none (the timer is a trigger, never the store). Only partitions
    this worker owns and has caught up on are fired: while a backlog is being applied, a
    person's own next event decides (the engine fires what is due before applying it), so the
    alerts do not depend on how far behind the worker was.

    Expectations an onboarding backfill holds (opened by an agency's history) are left alone
    while it is open; once it is finished each tick releases them (the partition caught up,
    so the history on the log has been applied) and they are judged like any other.
    """

    def __init__(self, pool: asyncpg.Pool, stage: RuleStage, clock: Clock,
                 publisher: Publishes, caught_up: Callable[[], list[int]], *, topic: str,
                 grace: timedelta = timedelta(), health: Health | None = None,
                 upstream: Callable[[], Awaitable[bool]] | None = None) -> None:
        self._topic = topic
        # whether every worker's admission has forwarded what it was given (upstream.py)
        self._upstream = upstream
        self._pool = pool
        self._stage = stage
        self._pack = stage.pack
        self._clock = clock
        self._publisher = publisher
        self._caught_up = caught_up
        self._grace = grace
        self._health = health or Health()
        self._batch = 1000  # expectations per transaction

    async def tick_safely(self) -> int:
        """One timer tick that never raises: the timer is a trigger and PostgreSQL holds the
        deadlines, so a tick that fails (a server down, or a bug) is reported and the next
        tick tries again; nothing is lost by skipping one. Alert events left in the outbox
        (their publication failed earlier) are published here too."""
        try:
            fired = await self.tick()
            await self._publisher.publish()
        except (*DATABASE_UNAVAILABLE, *BROKER_UNAVAILABLE) as exc:
            if self._health.ready_component("deadlines"):
                log.warning("deadline timer waiting for the servers", error=type(exc).__name__)
            self._health.down("deadlines", f"servers unavailable ({type(exc).__name__})")
            return 0
        except Exception as exc:
            log.error("deadline timer tick failed; retrying on the next tick",
                      error=type(exc).__name__)
            self._health.down("deadlines", f"tick failed ({type(exc).__name__})")
            return 0
        self._health.up("deadlines")
        return fired

    async def tick(self) -> int:
        fired_total = 0
        while True:
            partitions = self._caught_up()
            if not partitions or (self._upstream is not None and not await self._upstream()):
                return fired_total
            async with self._stage.lock, self._pool.acquire() as conn:
                partition_of: dict[str, int] = {}
                try:
                    async with conn.transaction():
                        partitions = [r["p"] for r in await conn.fetch(
                            positions_sql.APPLIED_LIVE_ON, RULES, self._topic, partitions)]
                        if not partitions:  # the rules still catching up from the archive
                            return fired_total
                        freed = await self._release(conn, partitions)
                        cutoffs = {p: at - self._grace for p, at in
                                   (await self._clock.now(conn, partitions)).items()}
                        due = await rules_store.due_expectations(conn, cutoffs, self._batch)
                        fired = []
                        for expectation, partition in due:
                            fired += fire_due(self._pack, [expectation], cutoffs[partition])
                        partition_of = {e.person_key: p for e, p in (*freed, *due)}
                        await rules_store.save_expectations(conn, [e for e, _ in fired],
                                                            partition_of)
                        await record_alert_events(conn, [a for _, a in fired],
                                                  self._stage.delivery)
                finally:  # committed or not (a lost COMMIT acknowledgement), reload them
                    self._stage.drop_cached(partition_of)
            if fired:
                log.info("deadlines passed", alerts=len(fired))
                await self._publisher.publish()
            fired_total += len(fired)
            if len(due) < self._batch and len(freed) < self._batch:
                return fired_total

    async def _release(self, conn: asyncpg.Connection, partitions: list[int]
                       ) -> list[tuple[Expectation, int]]:
        """Held expectations of finished backfills on ``partitions``, released and saved (in
        the tick's transaction: the due query then sees them as any other)."""
        rows = await conn.fetch(backfill_sql.RELEASABLE, partitions, self._batch)
        freed = [(released(from_jsonable(Expectation, json.loads(r["state"]))),
                  r["kafka_partition"]) for r in rows]
        await rules_store.save_expectations(conn, [e for e, _ in freed],
                                            {e.person_key: p for e, p in freed})
        if freed:
            log.info("backfill finished: held deadlines released", expectations=len(freed))
        return freed
