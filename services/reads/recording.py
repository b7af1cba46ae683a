"""Recording governance events: checked against the person's record under a per-person
lock (and against the read models where the check needs them: the caseload, the timeline,
the accounts), appended with their outbox row and audited in one transaction, published
after commit. A refused attempt is audited too."""

from __future__ import annotations

import uuid

import asyncpg
import structlog

from projections.queries import reads as q
from services.common.db import DATABASE_UNAVAILABLE
from services.common.kafka import BROKER_UNAVAILABLE
from services.common.outbox import OutboxPublisher
from services.identity.key_ring import KeyRing
from services.reads import accounts
from services.reads.adapters import audit_log, governance_log
from services.reads.domain.audit import Caller, action_record
from services.reads.domain.governance import (
    AGREEMENT_TYPES,
    AccessGranted,
    Actor,
    AgreementMade,
    ConsentGiven,
    ConsentWithdrawn,
    EntryDisclosed,
    EpisodeOpened,
    GovernanceEvent,
    Payload,
    PersonRecord,
)
from services.reads.domain.refusals import refusal
from services.reads.domain.visibility import AGENCY_SYSTEM
from services.reads.lookup import Clock, ReadRefused, current_person, uuid_or_none

log = structlog.get_logger(__name__)


def actor_of(caller: Caller) -> Actor:
    reader = caller.reader
    if caller.kind == "practitioner":
        return Actor("practitioner", reader.agency, reader.practitioner, reader.team)
    if caller.kind == AGENCY_SYSTEM:
        return Actor("agency", reader.agency)
    return Actor("operator", operator=caller.operator)


class GovernanceRecorder:
    def __init__(self, pool: asyncpg.Pool, key_ring: KeyRing,
                 publisher: OutboxPublisher | None, clock: Clock) -> None:
        self._pool = pool
        self.key_ring = key_ring
        self._publisher = publisher
        self._clock = clock

    async def record(self, caller: Caller, person_id: str | None, payload: Payload,
                     purpose: str = "care_coordination") -> GovernanceEvent:
        """Check and record one governance event; it takes effect on the next read."""
        event = GovernanceEvent(str(uuid.uuid4()), self._clock(), None, actor_of(caller),
                                payload)
        refused: ReadRefused | None = None
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    event = await self._check_and_record(conn, caller, person_id, event)
                    await audit_log.write(conn, action_record(
                        caller, event.event_type, event.person_id, purpose, "ok",
                        {"event_id": event.event_id}))
            except ReadRefused as exc:
                refused = exc
            if refused is not None:  # the attempt is audited too, in its own transaction
                await audit_log.write(conn, action_record(
                    caller, event.event_type, uuid_or_none(person_id or ""), purpose,
                    "refused" if refused.kind != "not_found" else "not_found",
                    {"reason": refused.message}))
                raise refused
        await self.publish()
        return event

    async def publish(self) -> None:
        """Send what the outbox holds; a failure leaves it for the next drain."""
        if self._publisher is None:
            return
        try:
            await self._publisher.publish()
        except (*BROKER_UNAVAILABLE, *DATABASE_UNAVAILABLE) as exc:  # the outbox keeps them
            log.warning("governance events left in the outbox", error=type(exc).__name__)

    async def _check_and_record(self, conn: asyncpg.Connection, caller: Caller,
                                person_id: str | None, event: GovernanceEvent
                                ) -> GovernanceEvent:
        if event.event_type in AGREEMENT_TYPES:
            if caller.kind != "operator":
                raise ReadRefused("forbidden", "agreements are recorded by operators")
            await governance_log.lock_agreements(conn)
            known = await governance_log.load_agreements(conn)
            await self._check_references(conn, None, event)
            problem = refusal(PersonRecord(), event, known)
        else:
            person = await current_person(conn, person_id or "")
            if person is None:
                raise ReadRefused("not_found", "no such person")
            event = GovernanceEvent(event.event_id, event.recorded_at, person, event.actor,
                                    event.payload)
            await governance_log.lock_person(conn, person)
            record = await governance_log.load_record(conn, person, self.key_ring)
            await self._check_standing(conn, caller, person, record, event)
            await self._check_references(conn, person, event)
            problem = refusal(record, event)
        if problem:
            raise ReadRefused("conflict", problem)
        await governance_log.record(conn, event, self.key_ring)
        return event

    async def _check_standing(self, conn: asyncpg.Connection, caller: Caller, person: str,
                              record: PersonRecord, event: GovernanceEvent) -> None:
        """Consent is recorded, and an episode opened, by someone working with the person:
        the lead professional, or an agency on their caseload now (or an operator)."""
        if not isinstance(event.payload, ConsentGiven | ConsentWithdrawn | EpisodeOpened):
            return
        if caller.kind == "operator":
            return
        lead = record.open_episode
        if lead is not None and lead.coordinator_id == caller.reader.practitioner:
            return
        working = {r["agency"] for r in await conn.fetch(q.CASELOAD, person) if r["active"]}
        if caller.reader.agency not in working:
            raise ReadRefused("forbidden", "only the lead professional or an agency working "
                                           "with the person records this")
        if caller.reader.role == "business_support":
            raise ReadRefused("forbidden", "business support does not record consent or "
                                           "open episodes")

    async def _check_references(self, conn: asyncpg.Connection, person: str | None,
                                event: GovernanceEvent) -> None:
        """What the event names exists: agencies, practitioners, teams, the entry."""
        p = event.payload
        agencies: set[str] = set()
        if isinstance(p, ConsentGiven | AgreementMade):
            agencies |= set(p.agencies)
        if isinstance(p, EntryDisclosed):
            agencies.add(p.to_agency)
            if await conn.fetchrow(q.TIMELINE_ENTRY, person, _uuid(p.entry_event_id),
                                   p.entry_agency) is None:
                raise ReadRefused("not_found", "no entry of the discloser's agency with that id on "
                                               "the person's timeline")
        if isinstance(p, EpisodeOpened):
            coordinator = await accounts.practitioner_by_id(conn, p.coordinator_id)
            if (coordinator is None or coordinator.agency_id != p.coordinator_agency
                    or coordinator.team_id != p.coordinator_team):
                raise ReadRefused("invalid", "the coordinator is not an enabled practitioner "
                                             "of that agency and team")
        if isinstance(p, AccessGranted):
            if p.practitioner_id is not None and (
                    await accounts.practitioner_by_id(conn, p.practitioner_id) is None):
                raise ReadRefused("invalid", "no such practitioner")
            if p.team_id is not None and await conn.fetchrow(q.TEAM, p.team_id) is None:
                raise ReadRefused("invalid", "no such team")
        if agencies:
            known = {r["agency_id"] for r in await conn.fetch(q.AGENCY_IDS, sorted(agencies))}
            unknown = agencies - known
            if unknown:
                raise ReadRefused("invalid", f"unknown agencies: {', '.join(sorted(unknown))}")




def _uuid(value: str) -> uuid.UUID | None:
    found = uuid_or_none(value)
    return None if found is None else uuid.UUID(found)
