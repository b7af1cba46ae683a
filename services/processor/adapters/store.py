"""asyncpg edge of the processor: the event archive, which tells new events from copies.

Every function takes a connection already inside the batch's transaction, so effects and the
consumer position commit together or not at all. The read models' own loads and writes are
their stores, in ``services/processor/read_models/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from projections.queries import backbone as sql
from services.common.events import AgencyEvent
from services.common.records import Message
from services.common.serde.agency_event import decode_event

if TYPE_CHECKING:  # the opener folds stored events; it imports this module
    from services.processor.opening import Opener


@dataclass(frozen=True, slots=True)
class Received:
    """A decoded event with where it came from and its bytes as received."""

    event: AgencyEvent
    body: bytes
    topic: str
    partition: int
    offset: int
    message: Message | None = None  # as read from the topic (None: from the archive)

    @property
    def key(self) -> str | None:
        """The person id the message was keyed by, if it was read from a topic."""
        key = self.message.key if self.message is not None else None
        return key.decode(errors="replace") if key is not None else None


async def prepare_connection(conn: asyncpg.Connection) -> None:
    """Pool `init` hook: the staging table the archive is COPYed through."""
    await conn.execute(sql.CREATE_ARCHIVE_STAGE)


@dataclass(frozen=True, slots=True)
class Archived:
    fresh: list[Received]     # new: the first copy of each, in log order
    duplicates: int           # copies of events archived before (or earlier in the batch)
    clashes: list[Received]   # an event id the agency already used for a different event


async def archive(conn: asyncpg.Connection, batch: Sequence[Received],
                  opener: Opener | None = None) -> Archived:
    """Archive the batch, and tell new events from copies and from clashes.

    An event is identified by (source agency, event id). A copy of an archived event (the
    same bytes, or the same content written under another schema version) changes nothing;
    the same id with different content is a clash: refused, never applied, never dropped
    silently (the caller parks it with the reason). Two sealings of one event differ in
    their bytes: what was archived is opened (``opener``) before contents are compared."""
    if not batch:
        return Archived([], 0, [])
    await conn.copy_records_to_table(
        "archive_stage", columns=sql.ARCHIVE_COLUMNS,
        # the event id as text: asyncpg parses it into the uuid column in C
        records=[(r.event.event_id, r.event.person_key, r.event.event_type,
                  r.event.source.agency, r.event.occurred_at, r.event.recorded_at,
                  r.event.schema_version, r.event.sensitivity, r.body, r.topic, r.partition,
                  r.offset) for r in batch])
    new = {(r["source_agency"], r["event_id"]) for r in await conn.fetch(sql.ARCHIVE_FROM_STAGE)}
    keys = [(r.event.source.agency, r.event.event_id) for r in batch]
    before = sorted({k for k in keys if k not in new})
    same_body: dict[tuple[str, str], bool] = {}
    archived: dict[tuple[str, str], AgencyEvent] = {}
    if before:
        rows = await conn.fetch(sql.SAME_AS_ARCHIVED, [a for a, _ in before],
                                [i for _, i in before])
        same_body = {(r["source_agency"], r["event_id"]): r["same_body"] for r in rows}
        differing = [k for k, same in same_body.items() if not same]
        if differing:  # rare: decode what was archived and compare contents
            rows = await conn.fetch(sql.ARCHIVED_BODIES, [a for a, _ in differing],
                                    [i for _, i in differing])
            decoded = [decode_event(r["body"]) for r in rows]
            if opener is not None:
                decoded = await opener.events(conn, decoded)
            archived = {(r["source_agency"], r["event_id"]): e
                        for r, e in zip(rows, decoded, strict=True)}
    fresh: list[Received] = []
    clashes: list[Received] = []
    first: dict[tuple[str, str], Received] = {}
    for item, key in zip(batch, keys, strict=True):
        if key in new and key not in first:
            first[key] = item
            fresh.append(item)
            continue
        earlier = first.get(key)
        if earlier is not None:
            same = earlier.body == item.body or same_content(earlier.event, item.event)
        else:
            same = same_body.get(key, True) or same_content(archived[key], item.event)
        if not same:
            clashes.append(item)
    return Archived(fresh, len(batch) - len(fresh) - len(clashes), clashes)


def same_content(a: AgencyEvent, b: AgencyEvent) -> bool:
    """The same fact, whichever schema version wrote it (and whichever sealing: compared
    open; two copies of an erased event are the same erased event)."""
    return dataclasses.replace(a, schema_version=0) == dataclasses.replace(b, schema_version=0)
