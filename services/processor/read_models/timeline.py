"""Timeline: one entry per event, in the person's own words-free summary (append only)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from projections.queries import backbone as sql
from services.common.events import PAYLOAD_BY_FAMILY, AgencyEvent
from services.processor.domain.timeline import TimelineEntry, timeline_entry
from services.processor.read_models.registry import ReadModel, Stateless, no_key


def record_on_timeline(state: None, event: AgencyEvent) -> tuple[None, list[TimelineEntry]]:
    return None, [timeline_entry(event)]


class TimelineStore(Stateless[TimelineEntry]):
    async def forget(self, conn: asyncpg.Connection, people: Sequence[str]) -> None:
        await conn.execute(sql.FORGET_TIMELINES, people)

    async def write(self, conn: asyncpg.Connection, changes: Sequence[TimelineEntry]) -> None:
        if changes:  # only events the archive just called new reach here: COPY cannot collide
            await conn.copy_records_to_table(
                "timeline_entry", columns=sql.TIMELINE_COLUMNS,
                records=[(e.person_key, e.occurred_at, e.recorded_at, e.event_id,  # text: asyncpg parses it
                          e.event_type, e.source_agency, e.service_kind, e.sensitivity,
                          e.summary) for e in changes])


def timeline() -> ReadModel[None, None, TimelineEntry]:
    return ReadModel("timeline", dict.fromkeys(PAYLOAD_BY_FAMILY, record_on_timeline), no_key,
                     TimelineStore(), ("timeline_entry",))
