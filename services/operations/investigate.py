"""Investigating one person: why the rules did what they did (``explain``), what joinedup
knew at a moment (``as_of``), and whether the live read models hold what the person's
history gives (``replay``). The asyncpg edge; the work is pure (``trace.py``,
``person_fold.py``).

Each reads the person's archived events in the order the live pipeline applied them
(``event_archive.seq``, under every person id that resolves to them now), opens them with
the key ring as every fold does, and folds them in memory: nothing is written but the
access-audit row, in the same repeatable-read transaction, so nothing is shown that is not
audited. These are information-governance and operations tools, not practitioners' reads:
they show every agency's entries (an investigation or a serious case review needs the whole
picture) to operations staff only, with the purpose recorded.

"Known at T" is joinedup's own knowledge: an event counts when the agency had recorded it
(``recorded_at <= T``) and joinedup had archived it (``archived_at <= T``). ``archived_at``
is the clock that says what joinedup knew; ``recorded_at`` alone would show an event sent
days late as known before it arrived. The recorded-at bound keeps the rules' clock (the
latest recorded-at) at or before T, so deadlines are judged at T as the timer would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from projections.queries import investigate as sql
from services.common.events import AgencyEvent
from services.common.serde.agency_event import read_event
from services.operations.person_fold import Difference, as_of, differences, fold_person
from services.processor.domain.rules import RulePack
from services.processor.domain.rules.trace import Other, Trace, trace
from services.processor.opening import Opener
from services.processor.read_models import read_models
from services.processor.rules_stage import RuleStage
from services.reads.adapters import audit_log
from services.reads.domain.audit import Caller, action_record
from services.reads.lookup import ReadRefused, current_person


@dataclass(frozen=True)
class Investigation:
    """What every investigation needs: the rule pack, the key ring's opener, who asks."""

    pack: RulePack
    opener: Opener
    caller: Caller
    purpose: str


async def explain(pool: asyncpg.Pool, how: Investigation, person_id: str, at: datetime,
                  rule_id: str | None = None, known_only: bool = False) -> Trace:
    """The trace of the rules over the person's events (known by ``at`` when
    ``known_only``), deadlines judged at ``at``. An unknown rule is refused (invalid)."""
    if rule_id is not None and rule_id not in how.pack.by_id:
        raise ReadRefused("invalid", f"no rule '{rule_id}' in rule pack {how.pack.version}")
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        person, ids = await _person(conn, person_id)
        known = at if known_only else None
        events = await _events(conn, how.opener, person, ids, known)
        others = await _unlinked(conn, person, ids, known)
        found = trace(how.pack, person, events, at, rule_id, others)
        await _audit(conn, how, "explain", person, {
            "events": len(events), "rule": rule_id, "at": at.isoformat(),
            "possible_match_events": len(others)})
    return found


async def as_of_person(pool: asyncpg.Pool, how: Investigation, person_id: str,
                       at: datetime) -> dict[str, Any]:
    """The person's timeline, caseload, referrals, open expectations and alerts as known
    at ``at``."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        person, ids = await _person(conn, person_id)
        events = await _events(conn, how.opener, person, ids, at)
        fold = fold_person(read_models(RuleStage(how.pack)), how.pack, person, events, at)
        raised = [e.expectation_id for e in fold.expectations if e.raised_at is not None]
        duty = await conn.fetch(sql.DUTY_ACTIONS, raised, at)
        view = as_of(fold, at, [dict(r) for r in duty])
        await _audit(conn, how, "as_of", person, {"events": len(events), "at": at.isoformat(),
                                                   "items": len(view["timeline"])})
    return view


async def replay(pool: asyncpg.Pool, how: Investigation, person_id: str,
                 now: datetime) -> tuple[str, int, list[Difference]]:
    """Every read model folded again over the person's whole history, in memory, against
    what the live tables hold: (person, events, differences). Nothing is written."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        person, ids = await _person(conn, person_id)
        events = await _events(conn, how.opener, person, ids, None)
        own_clock = max((e.recorded_at for e in events), default=now)
        fold = fold_person(read_models(RuleStage(how.pack)), how.pack, person, events,
                           own_clock)
        live = {name: [dict(r) for r in await conn.fetch(query, person)] for name, query in (
            ("timeline", sql.LIVE_TIMELINE), ("caseload", sql.LIVE_CASELOAD),
            ("referrals", sql.LIVE_REFERRALS), ("rules", sql.LIVE_EXPECTATIONS))}
        found = differences(fold, live, now)
        await _audit(conn, how, "replay_person", person, {"events": len(events),
                                                          "differences": len(found)})
    return person, len(events), found


async def _person(conn: asyncpg.Connection, person_id: str) -> tuple[str, list[str]]:
    """The person an id resolves to now, and every person id that resolves to them."""
    person = await current_person(conn, person_id)
    if person is None:
        raise ReadRefused("not_found", "no such person")
    ids = [r["person_id"] for r in await conn.fetch(sql.PEOPLE_OF, person)]
    return person, ids or [person]


async def _events(conn: asyncpg.Connection, opener: Opener, person: str, ids: list[str],
                  known: datetime | None) -> list[AgencyEvent]:
    rows = await conn.fetch(sql.KNOWN_EVENTS, ids, known)
    return [e.for_person(person) for e in await opener.events(conn, _decoded(rows))]


def _decoded(rows: list[asyncpg.Record]) -> list[AgencyEvent]:
    """Archived bodies: ones the live pipeline decoded and checked, so one that no longer
    decodes is a bug to stop on, never to skip."""
    events = []
    for row in rows:
        event, reason = read_event(row["body"])
        if event is None:
            raise RuntimeError(f"archived event at seq {row['seq']} no longer decodes: "
                               f"{reason}")
        events.append(event)
    return events


async def _unlinked(conn: asyncpg.Connection, person: str, ids: list[str],
                    known: datetime | None) -> list[Other]:
    """Events of the people the identity step reported as a possible match for this one
    and did not link. Left sealed: the rules read only codes, which are in the clear, and
    an investigation of this person has no business opening another's personal fields."""
    mine = set(ids)
    candidates = {p for r in await conn.fetch(sql.POSSIBLE_MATCHES, ids, known)
                  for p in r["people"] if p not in mine}
    if not candidates:
        return []
    current = {r["person_id"]: r["current_id"]
               for r in await conn.fetch(sql.CURRENT_OF, sorted(candidates))}
    others = sorted({c for p in candidates if (c := current.get(p, p)) != person})
    found = []
    for other in others:
        for event in _decoded(await conn.fetch(sql.KNOWN_EVENTS, [other], known)):
            schemes = ", ".join(sorted({i.scheme for i in event.identifiers}))
            found.append(Other(event, f"unlinked identifier: filed under possible match "
                                      f"{other} ({schemes}, from agency "
                                      f"{event.source.agency}); not linked by the index"))
    return found


async def _audit(conn: asyncpg.Connection, how: Investigation, action: str, person: str,
                 detail: dict[str, Any]) -> None:
    await audit_log.write(conn, action_record(how.caller, action, person, how.purpose, "ok",
                                              detail))
