"""The read side's one path: every read of a person and every governance action, for the
API and the CLI alike.

Each call is one PostgreSQL transaction that resolves the person (an id merged since
resolves to where it went), folds their governance record, reads the read model, decides
each item for the reader (``domain/views.py``) and writes the audit record: nothing is
shown that is not audited. Governance events are recorded through ``recording.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import asyncpg

from projections.queries import identity as identity_sql
from projections.queries import reads as q
from services.common.identifiers import identifier_problem
from services.common.outbox import OutboxPublisher
from services.common.settings import Settings
from services.identity.key_ring import KeyRing
from services.reads import accounts
from services.reads.adapters import audit_log, governance_log
from services.reads.domain import views
from services.reads.domain.audit import Caller, action_record, read_record
from services.reads.domain.governance import GovernanceEvent, Payload, PersonRecord, context
from services.reads.domain.views import Shown
from services.reads.domain.visibility import Context, Reader
from services.reads.lookup import Clock, ReadRefused, current_person, uuid_or_none
from services.reads.recording import GovernanceRecorder

MAX_PAGE: Final = 500


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Shown]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class LeadProfessional:
    practitioner_id: str
    username: str | None
    agency_id: str
    team_id: str | None
    episode_id: str
    since: datetime


@dataclass(frozen=True, slots=True)
class Summary:
    person_id: str
    caseload: list[Shown]
    lead_professional: LeadProfessional | None
    #: consents, grants and disclosures: for the lead professional, information
    #: governance staff, and the agency that recorded each (others see none of them)
    governance: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def encode_cursor(row: dict[str, Any]) -> str:
    raw = json.dumps([row["occurred_at"].isoformat(), row["recorded_at"].isoformat(),
                      row["event_id"]])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        occurred, recorded, event_id = json.loads(raw)
        return (datetime.fromisoformat(occurred), datetime.fromisoformat(recorded),
                uuid.UUID(event_id))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ReadRefused("invalid", "cursor: not a cursor this API gave") from None


def rule_categories(settings: Settings) -> dict[str, str]:
    """What each rule's alerts reveal, from the rule pack the processor runs."""
    from services.processor.bootstrap import load_pack

    return {rule.id: rule.category for rule in load_pack(settings).rules}


def person_reads(pool: asyncpg.Pool, settings: Settings,
                 publisher: OutboxPublisher | None = None) -> PersonReads:
    """The read path as configured: the rule pack's categories and the key ring."""
    return PersonReads(pool, rule_categories(settings),
                       KeyRing(settings.key_encryption_key()), publisher)


class PersonReads:
    def __init__(self, pool: asyncpg.Pool, rule_categories: Mapping[str, str],
                 key_ring: KeyRing, publisher: OutboxPublisher | None = None,
                 clock: Clock = lambda: datetime.now(UTC)) -> None:
        """``rule_categories``: each rule id of the rule pack and the category its alerts
        reveal (an alert of a rule not in it is shown only to its duty team's agency).
        ``key_ring``: opens and seals the free text of governance events."""
        self._pool = pool
        self._rules = dict(rule_categories)
        self.key_ring = key_ring
        self.recorder = GovernanceRecorder(pool, key_ring, publisher, clock)
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    # --- reads ---------------------------------------------------------------------------

    async def search(self, caller: Caller, scheme: str, value: str, purpose: str) -> str:
        """The person holding an identifier (a local id is the reader's agency's unless it
        names one: ``<agency>/<value>``). Audited with the scheme, never the value."""
        problem = identifier_problem(scheme, value)
        if problem:
            raise ReadRefused("invalid", f"identifier: {problem}")
        if scheme == "local_id" and "/" not in value:
            value = f"{caller.reader.agency}/{value}"
        async with self._pool.acquire() as conn, conn.transaction():
            person = await conn.fetchval(identity_sql.PERSON_BY_IDENTIFIER, scheme, value)
            await audit_log.write(conn, action_record(
                caller, "search", person, purpose, "ok" if person else "not_found",
                {"scheme": scheme}))
        if person is None:
            raise ReadRefused("not_found", "no person holds that identifier")
        return str(person)

    async def timeline(self, caller: Caller, person_id: str, purpose: str, limit: int = 50,
                       cursor: str | None = None) -> Page:
        limit = max(1, min(limit, MAX_PAGE))
        after = decode_cursor(cursor) if cursor else (None, None, None)

        async def load(conn: asyncpg.Connection, person: str, ctx: Context,
                       record: PersonRecord) -> tuple[list[Shown], dict[str, Any]]:
            rows = await conn.fetch(q.TIMELINE_PAGE, person, *after, limit + 1)
            more = len(rows) > limit
            rows = rows[:limit]
            shown = views.timeline(rows, caller.reader, ctx, self._clock())
            next_cursor = encode_cursor(dict(rows[-1])) if more else None
            return shown, {"next_cursor": next_cursor}

        shown, extra = await self._read(caller, "read.timeline", person_id, purpose, load)
        return Page(shown, extra["next_cursor"])

    async def referrals(self, caller: Caller, person_id: str, purpose: str) -> list[Shown]:
        return await self._read_rows(caller, "read.referrals", person_id, purpose,
                                     q.REFERRALS, views.referrals)

    async def expectations(self, caller: Caller, person_id: str, purpose: str) -> list[Shown]:
        return await self._read_rows(caller, "read.expectations", person_id, purpose,
                                     q.OPEN_EXPECTATIONS, partial(views.expectations,
                                                                  rules=self._rules))

    async def alerts(self, caller: Caller, person_id: str, purpose: str) -> list[Shown]:
        return await self._read_rows(caller, "read.alerts", person_id, purpose, q.ALERTS,
                                     partial(views.alerts, rules=self._rules))

    async def summary(self, caller: Caller, person_id: str, purpose: str) -> Summary:
        """Who works with the person now (the caseload) and their lead professional."""
        found: dict[str, Any] = {}

        async def load(conn: asyncpg.Connection, person: str, ctx: Context,
                       record: PersonRecord) -> tuple[list[Shown], dict[str, Any]]:
            shown = views.caseload(await conn.fetch(q.CASELOAD, person), caller.reader, ctx,
                                   self._clock())
            found["lead"] = await self._lead_professional(conn, record)
            found["governance"] = _governance_items(record, caller.reader)
            found["person"] = person
            return shown, {}

        shown, _ = await self._read(caller, "read.summary", person_id, purpose, load)
        return Summary(found["person"], shown, found["lead"], found["governance"])

    async def access_log(self, caller: Caller, person_id: str, purpose: str
                         ) -> list[dict[str, Any]]:
        """Who read or acted on the person's records (itself an audited read)."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            person = await current_person(conn, person_id)
            found = [] if person is None else await audit_log.of_person(conn, person)
            await audit_log.write(conn, action_record(
                caller, "read.access_log", person or uuid_or_none(person_id), purpose,
                "ok" if person else "not_found", {"entries": len(found)}))
        if person is None:
            raise ReadRefused("not_found", "no such person")
        return found

    async def open_episode_id(self, person_id: str) -> str | None:
        """The person's open coordination episode, if any (not a read of their records)."""
        async with self._pool.acquire() as conn:
            person = await current_person(conn, person_id)
            if person is None:
                return None
            episode = (await governance_log.load_record(conn, person, self.key_ring)).open_episode
            return None if episode is None else episode.episode_id

    async def _read_rows(self, caller: Caller, action: str, person_id: str, purpose: str,
                         query: str,
                         decide: Callable[[Sequence[Any], Reader, Context, datetime],
                                          list[Shown]]) -> list[Shown]:
        async def load(conn: asyncpg.Connection, person: str, ctx: Context,
                       record: PersonRecord) -> tuple[list[Shown], dict[str, Any]]:
            return decide(await conn.fetch(query, person), caller.reader, ctx,
                          self._clock()), {}

        shown, _ = await self._read(caller, action, person_id, purpose, load)
        return shown

    async def _read(self, caller: Caller, action: str, person_id: str, purpose: str,
                    load: Callable[[asyncpg.Connection, str, Context, PersonRecord],
                                   Awaitable[tuple[list[Shown], dict[str, Any]]]]
                    ) -> tuple[list[Shown], dict[str, Any]]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            person = await current_person(conn, person_id)
            if person is None:
                await audit_log.write(conn, action_record(
                    caller, action, uuid_or_none(person_id), purpose, "not_found"))
                result = None
            else:
                record = await governance_log.load_record(conn, person, self.key_ring)
                agreements = await governance_log.load_agreements(conn)
                ctx = context(record, agreements.values())
                shown, extra = await load(conn, person, ctx, record)
                await audit_log.write(conn, read_record(caller, action, person, purpose,
                                                        shown))
                result = (shown, extra)
        if result is None:
            raise ReadRefused("not_found", "no such person")
        return result

    async def _lead_professional(self, conn: asyncpg.Connection, record: PersonRecord
                                 ) -> LeadProfessional | None:
        episode = record.open_episode
        if episode is None:
            return None
        who = await accounts.practitioner_by_id(conn, episode.coordinator_id)
        return LeadProfessional(episode.coordinator_id, who.username if who else None,
                                episode.coordinator_agency, episode.coordinator_team,
                                episode.episode_id, episode.opened_at)

    # --- governance actions -------------------------------------------------------------

    async def record(self, caller: Caller, person_id: str | None, payload: Payload,
                     purpose: str = "care_coordination") -> GovernanceEvent:
        """Check and record one governance event; it takes effect on the next read."""
        return await self.recorder.record(caller, person_id, payload, purpose)

    async def publish(self) -> None:
        await self.recorder.publish()


def _governance_items(record: PersonRecord, reader: Reader) -> dict[str, list[dict[str, Any]]]:
    """The governance record as this reader may see it: all of it for the lead professional
    and information governance staff; otherwise what the reader's agency recorded or is
    party to."""
    lead = record.open_episode
    everything = (reader.role == "information_governance"
                  or (lead is not None and lead.coordinator_id == reader.practitioner))
    consents = [
        {"consent_id": c.consent_id, "agencies": sorted(c.consent.agencies),
         "categories": sorted(c.consent.categories), "starts": c.consent.starts,
         "expires": c.consent.expires, "kind": c.consent.kind,
         "recorded_by": c.consent.recorded_by, "recorded_at": c.recorded_at,
         "withdrawn_at": c.consent.withdrawn_at}
        for c in record.consents.values()
        if everything or reader.agency in c.consent.agencies]
    grants = [
        {"grant_id": g.grant_id, "episode_id": g.episode_id,
         "practitioner_id": g.practitioner_id, "team_id": g.team_id,
         "granted_at": g.granted_at, "revoked_at": g.revoked_at}
        for g in record.grants.values()
        if everything or g.practitioner_id == reader.practitioner
        or (g.team_id is not None and g.team_id == reader.team)]
    disclosures = [
        {"disclosure_id": d.disclosure_id, "entry_event_id": d.disclosure.event_id,
         "entry_agency": d.entry_agency, "to_agency": d.disclosure.to_agency,
         "legal_basis": d.disclosure.legal_basis, "reason": d.disclosure.reason,
         "by": d.disclosure.by, "recorded_at": d.recorded_at}
        for d in record.disclosures.values()
        if everything or reader.agency in (d.entry_agency, d.disclosure.to_agency)]
    return {"consents": consents, "grants": grants, "disclosures": disclosures}


