"""`joinedup simulate`: generate a synthetic population and publish it as its agencies would,
each agency's events straight onto that agency's own topic (the way a direct publisher does;
admission checks and forwards them)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from rich.progress import Progress

from services.common.agencies import register_agency
from services.common.db import create_pool
from services.common.event_log import EventLog
from services.common.events import AgencyEvent
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import Settings
from services.simulation import AGENCIES, simulate


async def register_simulated_agencies(settings: Settings) -> None:
    pool = await create_pool(settings, max_size=2)
    try:
        for agency in AGENCIES:
            await register_agency(pool, agency.agency_id, agency.name, agency.service_kind)
    finally:
        await pool.close()


async def publish_events(settings: Settings, events: list[AgencyEvent], *,
                         show_progress: bool = True) -> None:
    """Produce to each event's agency topic, keyed by person, acks=all, a window of sends
    in flight at a time."""
    await ensure_topics(settings, agencies={e.source.agency for e in events})
    producer = make_producer(settings)
    await producer.start()
    try:
        with Progress(disable=not show_progress) as progress:
            task = progress.add_task("publishing", total=len(events))
            pending = []
            log = EventLog(producer, settings.topics, settings.subject_keys())
            for event in events:
                pending.append(await log.send(event))
                if len(pending) >= 5_000:
                    await asyncio.gather(*pending)
                    progress.advance(task, len(pending))
                    pending = []
            await asyncio.gather(*pending)
            progress.advance(task, len(pending))
    finally:
        await producer.stop()


def generate(seed: int, people: int, months: int, start: datetime) -> list[AgencyEvent]:
    return simulate(seed=seed, people=people, months=months, start=start)
