"""asyncpg edge of the rules: a person's rule state in and out of PostgreSQL.

The domain's frozen dataclasses are stored field for field in jsonb (`state`), with the
columns the queries need (status, due time, person) beside them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from projections.queries import rules as sql
from services.common.jsonable import dumps, from_jsonable
from services.processor.domain.rules import Expectation, Marker, PersonRuleState


async def load_states(conn: asyncpg.Connection, people: Sequence[str], now: datetime,
                      horizon: timedelta | None) -> dict[str, PersonRuleState]:
    """Rule state for each person: live expectations, closed ones within the pack's horizon
    (so a duplicate trigger finds them; every closed one without a horizon), markers and the
    lead professional's team."""
    if not people:
        return {}
    expectations: dict[str, list[Expectation]] = {p: [] for p in people}
    markers: dict[str, list[Marker]] = {p: [] for p in people}
    kept_from = now - horizon if horizon is not None else datetime.min.replace(tzinfo=UTC)
    for row in await conn.fetch(sql.PERSON_EXPECTATIONS, people, kept_from):
        e = from_jsonable(Expectation, json.loads(row["state"]))
        expectations[e.person_key].append(e)
    for row in await conn.fetch(sql.PERSON_MARKERS, people):
        m = from_jsonable(Marker, json.loads(row["state"]))
        markers[m.person_key].append(m)
    teams = {r["person_key"]: (r["lead_team"], r["lead_team_since"])
             for r in await conn.fetch(sql.PERSON_LEAD_TEAMS, people)}
    return {p: PersonRuleState(p, tuple(expectations[p]), tuple(markers[p]),
                               *teams.get(p, (None, None)))
            for p in people}


async def save_expectations(conn: asyncpg.Connection, changed: Iterable[Expectation],
                            partition_of: dict[str, int]) -> None:
    """Upsert expectations; `partition_of` maps each person to their Kafka partition."""
    rows = list({e.expectation_id: e for e in changed}.values())
    if rows:
        await conn.execute(
            sql.UPSERT_EXPECTATIONS, [e.expectation_id for e in rows], [e.rule_id for e in rows],
            [e.person_key for e in rows], [e.trigger_event_id for e in rows],
            [e.due_at for e in rows], [e.status for e in rows],
            [dumps(e) for e in rows],
            [partition_of[e.person_key] for e in rows])


async def save_markers(conn: asyncpg.Connection, added: Sequence[Marker],
                       pruned: Sequence[Marker]) -> None:
    if added:
        await conn.execute(
            sql.INSERT_MARKERS, [m.person_key for m in added], [m.rule_id for m in added],
            [m.role for m in added], [m.agency for m in added], [m.event_id for m in added],
            [m.occurred_at for m in added], [dumps(m) for m in added])
    if pruned:
        await conn.execute(
            sql.DELETE_MARKERS, [m.person_key for m in pruned], [m.rule_id for m in pruned],
            [m.role for m in pruned], [m.agency for m in pruned], [m.event_id for m in pruned])


async def save_lead_teams(conn: asyncpg.Connection, states: Iterable[PersonRuleState]) -> None:
    rows = [s for s in states if s.lead_team is not None]
    if rows:
        await conn.execute(sql.UPSERT_LEAD_TEAMS, [s.person_key for s in rows],
                           [s.lead_team for s in rows], [s.lead_team_since for s in rows])


async def due_expectations(conn: asyncpg.Connection, cutoffs: dict[int, datetime],
                           limit: int = 1000) -> list[tuple[Expectation, int]]:
    """Open expectations due before their partition's cut-off that no backfill holds,
    locked, with the partition."""
    partitions = sorted(cutoffs)
    rows = await conn.fetch(sql.DUE_EXPECTATIONS, partitions, [cutoffs[p] for p in partitions],
                            limit)
    return [(from_jsonable(Expectation, json.loads(r["state"])), r["kafka_partition"])
            for r in rows]
