"""`joinedup rebuild` serves its progress per read model for Prometheus when
JOINEDUP_REBUILD_METRICS_PORT is set, counted from the shadow's positions (real servers)."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from services.operations.rebuild import Rebuild
from services.operations.rebuild_progress import serve_progress
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.processor.conftest import publish, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until_served(port: int) -> set[str]:
    """The metric families served on the port, once it answers."""
    for _ in range(300):
        try:
            async with (aiohttp.ClientSession() as session,
                        session.get(f"http://127.0.0.1:{port}/metrics") as response):
                text = await response.text()
            return {family.name for family in text_string_to_metric_families(text)}
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.05)
    raise AssertionError("the rebuild never served its progress")


async def scrape(port: int) -> dict[tuple[str, str], float]:
    async with (aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/metrics") as response):
        text = await response.text()
    return {(s.name, s.labels["read_model"]): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_rebuild_progress_is_served_per_read_model(running: Processor,
                                                         pool: asyncpg.Pool) -> None:
    events = [f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH"),
              f.referral("made"), f.contact("attended", source="MENTAL_HEALTH")]
    await publish(running.settings, events)
    await wait_for(pool, "SELECT count(*) FROM event_archive", 3)

    port = free_port()
    settings = running.settings.model_copy(update={"rebuild_metrics_port": port})
    rebuild = Rebuild(settings, names=("timeline", "referrals"), console=Console(quiet=True))
    # The archive locked: the rebuild waits on it with its progress served.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE event_archive IN ACCESS EXCLUSIVE MODE")
        running_rebuild = asyncio.create_task(rebuild.run())
        families = await until_served(port)
        assert {"joinedup_rebuild_events_to_apply", "joinedup_rebuild_events_applied"} <= families
    assert await running_rebuild == 6         # three events into each of two read models
    with socket.socket() as s:                # no longer served once it is done
        s.bind(("127.0.0.1", port))

    shadow = await rebuild._shadow_pool()
    served = await serve_progress(settings, rebuild.registry.names,
                                  lambda names: rebuild._progress_so_far(shadow, names))
    try:
        samples = await scrape(port)
    finally:
        await served.close()
        await shadow.close()
    assert samples == {
        ("joinedup_rebuild_events_to_apply", "timeline"): 3,
        ("joinedup_rebuild_events_applied", "timeline"): 3,
        ("joinedup_rebuild_events_to_apply", "referrals"): 3,
        ("joinedup_rebuild_events_applied", "referrals"): 3}
