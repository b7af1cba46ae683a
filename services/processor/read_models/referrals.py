"""Referrals and their history: the closed-loop status of each referral, keyed by its id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from projections.queries import backbone as sql
from services.alerts.events import AlertEvent
from services.common.events import AgencyEvent, Referral
from services.processor.adapters.store import Received
from services.processor.domain.referrals import ReferralState, StatusChange, apply_referral_event
from services.processor.read_models.registry import ReadModel, Uncached


def referral_id(event: AgencyEvent) -> str:
    assert isinstance(event.payload, Referral)
    return event.payload.referral_id


def track_referral(state: ReferralState | None, event: AgencyEvent
                   ) -> tuple[ReferralState, list[StatusChange]]:
    state, change = apply_referral_event(state, event)
    return state, [change]


class ReferralStore(Uncached):
    async def forget(self, conn: asyncpg.Connection, people: Sequence[str]) -> None:
        await conn.execute(sql.FORGET_REFERRALS, people)


    async def load(self, conn: asyncpg.Connection, keys: Sequence[str],
                   batch: Sequence[Received]) -> dict[str, ReferralState]:
        rows = await conn.fetch(sql.SELECT_REFERRALS, sorted(keys))
        return {row["referral_id"]: ReferralState(**dict(row)) for row in rows}

    async def save(self, conn: asyncpg.Connection, states: Mapping[str, ReferralState | None],
                   changes: Sequence[StatusChange], batch: Sequence[Received]
                   ) -> Sequence[AlertEvent]:
        # in key order: another process upserting some of the same rows locks them in the
        # same order, so the two wait for each other instead of deadlocking
        r = sorted((s for s in states.values() if s is not None), key=lambda s: s.referral_id)
        if r:
            await conn.execute(
                sql.UPSERT_REFERRALS, [x.referral_id for x in r], [x.person_key for x in r],
                [x.from_agency for x in r], [x.to_agency for x in r],
                [x.to_service_kind for x in r], [x.status for x in r],
                [x.status_rank for x in r], [x.status_at for x in r], [x.made_at for x in r],
                [x.decline_reason for x in r], [x.cites_service_kind for x in r],
                [x.decided_by for x in r], [x.outcome for x in r],
                [x.last_event_id for x in r])
        if changes:
            h = changes
            await conn.execute(
                sql.INSERT_REFERRAL_HISTORY, [x.referral_id for x in h],
                [x.event_id for x in h], [x.status for x in h], [x.occurred_at for x in h],
                [x.set_by for x in h])
        return ()


def referrals() -> ReadModel[str, ReferralState, StatusChange]:
    return ReadModel("referrals", {"referral": track_referral}, referral_id, ReferralStore(),
                     ("referral", "referral_history"))
