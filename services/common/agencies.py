"""The agency registry as the processor sees it: which source agencies may publish."""

from __future__ import annotations

import time

import asyncpg
import structlog

from services.common.db import DATABASE_UNAVAILABLE, create_pool
from services.common.kafka import ensure_topics
from services.common.settings import Settings

log = structlog.get_logger("joinedup.agencies")
ACTIVE_AGENCIES = "SELECT agency_id FROM agency WHERE disabled_at IS NULL"
ALL_AGENCIES = "SELECT agency_id FROM agency ORDER BY agency_id"
REGISTER_AGENCY = """
INSERT INTO agency (agency_id, name, service_kind) VALUES ($1, $2, $3)
ON CONFLICT (agency_id) DO UPDATE SET name = EXCLUDED.name, service_kind = EXCLUDED.service_kind,
    disabled_at = NULL
"""


class PublisherPolicy:
    """Refuses events whose source agency is not registered and active.

    The list is cached; an unknown agency triggers a reload (at most once a second), so an
    agency registered a moment ago is recognised without restarting the worker. While the
    database is unavailable the last list loaded is used (an agency disabled meanwhile is
    refused once it is back); with no list loaded yet, the error is raised and the batch
    waits for the database like any other.
    """

    def __init__(self, pool: asyncpg.Pool, refresh_seconds: float = 30.0) -> None:
        self._pool = pool
        self._refresh = refresh_seconds
        self._active: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    async def allows(self, agency: str) -> bool:
        age = time.monotonic() - self._loaded_at
        if age > self._refresh or (agency not in self._active and age > 1.0):
            try:
                rows = await self._pool.fetch(ACTIVE_AGENCIES)
            except DATABASE_UNAVAILABLE as exc:
                if self._loaded_at == float("-inf"):
                    raise
                log.warning("agency list not refreshed; using the last one",
                            error=type(exc).__name__)
                self._loaded_at = time.monotonic() - self._refresh + 1.0  # try again in 1 s
                return agency in self._active
            self._active = frozenset(r["agency_id"] for r in rows)
            self._loaded_at = time.monotonic()
        return agency in self._active


async def register_agency(
    conn: asyncpg.Connection | asyncpg.Pool, agency_id: str, name: str, service_kind: str,
) -> None:
    await conn.execute(REGISTER_AGENCY, agency_id, name, service_kind)


async def ensure_all_topics(settings: Settings) -> None:
    """The fixed topics and every registered agency's topic (a broker that came back empty)."""
    pool = await create_pool(settings, max_size=1)
    try:
        agencies = [r["agency_id"] for r in await pool.fetch(ALL_AGENCIES)]
    finally:
        await pool.close()
    await ensure_topics(settings, agencies=agencies)
