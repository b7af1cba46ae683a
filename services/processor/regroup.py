"""Regrouping: the read models follow a link or separation of records.

When the identity step merges two people or separates records, it puts the change on the
person-events topic keyed by each live person whose events it regroups (the survivor of a
merge; both sides of a separation), so each is regrouped in its own partition, in order
with that person's events. There, inside the batch's transaction:

1. the archived events filed under any person the change concerns are asked the person
   index which person they are now (``identity/lookup.py``), and this person's are refiled
   under its id (so the archive, and any rebuild from it, groups them the same way);
2. every read model in step on the partition forgets what it held for this person and for
   the people the change absorbed, then folds this person's archived events again, in the
   order they were applied: the timeline, referrals, caseload and the rules see one person,
   and an expectation opened under one record is met by an event under the other even when
   the link came after the event (or, after a separation, is no longer met);
3. the rules bring each alert in line with its expectation (resolved, reopened or moved; see
   ``domain/rules/regrouping.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from projections.queries import backbone as sql
from projections.queries import identity as identity_sql
from services.alerts.events import AlertEvent
from services.common.serde.agency_event import decode_event
from services.identity.codec import IdentityEvent
from services.identity.index_store import concerns
from services.processor.adapters.store import Received
from services.processor.opening import Opener, people_of
from services.processor.read_models import Registry
from services.processor.rules_stage import RULES, RuleStage


@dataclass(frozen=True, slots=True)
class Regroup:
    """An identity change read from ``partition``, for the person it is keyed by."""

    person: str
    change: IdentityEvent
    topic: str
    partition: int


async def regroup(conn: asyncpg.Connection, models: Registry, job: Regroup,
                  in_step: Mapping[str, set[tuple[str, int]]], opener: Opener
                  ) -> list[AlertEvent]:
    concerned = list(dict.fromkeys(concerns(job.change.change)))
    rows = await conn.fetch(sql.ARCHIVED_FOR_PEOPLE, concerned)
    events = await opener.events(conn, [decode_event(row["body"]).for_person(row["person_key"])
                                        for row in rows])
    owners = await people_of(conn, events)
    mine = [(row, event) for row, event, owner in zip(rows, events, owners, strict=True)
            if owner == job.person]
    await conn.execute(sql.REFILE_ARCHIVED, job.person,
                       [row["source_agency"] for row, _ in mine],
                       [row["event_id"] for row, _ in mine])
    live = {r["person_id"] for r in await conn.fetch(identity_sql.LIVE, concerned)}
    forgotten = [job.person, *(p for p in concerned if p != job.person and p not in live)]
    here = (job.topic, job.partition)
    kept = [m for m in models.models if here in in_step.get(m.name, set())]
    for model in kept:
        await model.store.forget(conn, forgotten)
    if job.person not in live:  # merged on since: the survivor's own regroup follows
        return []
    alerts = await models.apply(conn, [
        Received(event.for_person(job.person), row["body"], job.topic, job.partition,
                 row["kafka_offset"]) for row, event in mine], in_step)
    rules = next((m for m in kept if m.name == RULES), None)
    if rules is not None and isinstance(rules.store, RuleStage):
        alerts += await rules.store.reconcile(conn, job.person, job.partition, forgotten,
                                              job.change)
    return alerts
