"""Caseload: which agencies work with a person now, keyed by person (agency -> entry)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from projections.queries import backbone as sql
from services.alerts.events import AlertEvent
from services.common.events import PAYLOAD_BY_FAMILY, AgencyEvent
from services.processor.adapters.store import Received
from services.processor.domain.caseload import CaseloadEntry, apply_caseload_event
from services.processor.read_models.registry import ReadModel, Uncached

PersonCaseload = dict[str, CaseloadEntry]  # agency -> entry


def person_of(event: AgencyEvent) -> str:
    return event.person_key


def update_caseload(state: PersonCaseload | None, event: AgencyEvent
                    ) -> tuple[PersonCaseload, list[CaseloadEntry]]:
    caseload = dict(state or {})  # a person has a handful of agencies: copying is cheap
    return caseload, apply_caseload_event(caseload, event)


class CaseloadStore(Uncached):
    async def forget(self, conn: asyncpg.Connection, people: Sequence[str]) -> None:
        await conn.execute(sql.FORGET_CASELOADS, people)


    async def load(self, conn: asyncpg.Connection, keys: Sequence[str],
                   batch: Sequence[Received]) -> dict[str, PersonCaseload]:
        found: dict[str, PersonCaseload] = {}
        for row in await conn.fetch(sql.SELECT_CASELOAD, sorted(keys)):
            found.setdefault(row["person_key"], {})[row["agency"]] = CaseloadEntry(**dict(row))
        return found

    async def save(self, conn: asyncpg.Connection, states: Mapping[str, PersonCaseload | None],
                   changes: Sequence[CaseloadEntry], batch: Sequence[Received]
                   ) -> Sequence[AlertEvent]:
        c = list({(x.person_key, x.agency): x for x in changes}.values())  # the last wins
        if c:
            await conn.execute(
                sql.UPSERT_CASELOAD, [x.person_key for x in c], [x.agency for x in c],
                [x.service_kind for x in c], [x.active for x in c], [x.since for x in c],
                [x.last_event_at for x in c], [x.last_event_id for x in c],
                [x.ended_reason for x in c])
        return ()


def caseload() -> ReadModel[str, PersonCaseload, CaseloadEntry]:
    return ReadModel("caseload", dict.fromkeys(PAYLOAD_BY_FAMILY, update_caseload), person_of,
                     CaseloadStore(), ("caseload",))
