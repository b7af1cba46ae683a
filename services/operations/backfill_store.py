"""asyncpg edge of onboarding backfills: the record an operator opens and finishes, and what
it has done so far (services/processor/domain/backfill.py has the decisions)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from projections.queries import backfill as sql
from services.common.agencies import ALL_AGENCIES
from services.processor.domain.backfill import BackfillRefused, BackfillStatus


async def open_backfill(conn: asyncpg.Connection, agency: str, cut_over: datetime,
                        by: str) -> None:
    """Open ``agency``'s backfill; refused for an unknown agency, one that has a backfill
    already, or one whose events were already applied live (a replay would judge them as
    history, which live processing did not)."""
    async with conn.transaction():
        if agency not in {r["agency_id"] for r in await conn.fetch(ALL_AGENCIES)}:
            raise BackfillRefused(f"no agency {agency!r} is registered (joinedup agency create)")
        if await conn.fetchval(sql.HAS_EVENTS, agency):
            raise BackfillRefused(f"{agency} has events applied already: open a backfill "
                                  "before the agency publishes anything")
        if await conn.fetchval(sql.OPEN_BACKFILL, agency, cut_over, by) is None:
            raise BackfillRefused(f"{agency} has a backfill already (joinedup backfill status)")


async def finish_backfill(conn: asyncpg.Connection, agency: str, by: str) -> None:
    """The history is all uploaded: its held deadlines are judged from the timer's next
    tick on (once the worker has applied what is on the log)."""
    if await conn.fetchval(sql.FINISH_BACKFILL, agency, by) is None:
        found = await conn.fetchrow(sql.BACKFILL, agency)
        raise BackfillRefused(f"{agency} has no backfill" if found is None
                              else f"{agency}'s backfill is finished already")


async def backfill_status(conn: asyncpg.Connection, agency: str | None = None
                          ) -> list[BackfillStatus]:
    rows = ([r] if (r := await conn.fetchrow(sql.BACKFILL, agency)) is not None else []
            ) if agency is not None else await conn.fetch(sql.BACKFILLS)
    return [BackfillStatus(
        r["agency"], r["cut_over"], r["opened_at"], r["opened_by"], r["finished_at"],
        r["finished_by"], await conn.fetchval(sql.HISTORY_APPLIED, r["agency"], r["cut_over"]),
        await conn.fetchval(sql.HELD, r["agency"]),
        await conn.fetchval(sql.HISTORICAL_ALERTS, r["agency"])) for r in rows]


async def cut_over_of(conn: asyncpg.Connection, agency: str) -> tuple[datetime, bool] | None:
    """``agency``'s cut-over and whether its backfill is finished; None without one."""
    row = await conn.fetchrow(sql.BACKFILL, agency)
    return None if row is None else (row["cut_over"], row["finished_at"] is not None)
