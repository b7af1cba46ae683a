"""The duty service's composition root: the pool, the alerts outbox's producer and
publisher, the duty desk, the team feed's watch, the timer loop, webhook deliveries and
the person read path the board shows timelines through. ``joinedup duty`` serves it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import httpx
import structlog
import uvicorn

from services.alerts.desk import DutyDesk, Member
from services.alerts.outbox import AlertPublisher
from services.alerts.read_model import LiveDelivery
from services.alerts.stream import FeedWatch
from services.alerts.webhooks.dispatcher import Undeliverable, WebhookDispatcher
from services.common.correlation import CorrelationMiddleware
from services.common.db import create_pool, wait_and_migrate
from services.common.kafka import TopicGuard, ensure_topics, make_producer
from services.common.settings import Settings
from services.identity.key_ring import KeyRing
from services.reads import accounts
from services.reads.service import PersonReads, person_reads

log = structlog.get_logger("joinedup.duty")
Clock = Callable[[], datetime]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class DutySide:
    settings: Settings
    pool: asyncpg.Pool
    desk: DutyDesk
    feed: FeedWatch
    reads: PersonReads
    clock: Clock = _wall_clock
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def member(self, token: str) -> Member | None:
        """A practitioner's sign-in token, or a team's dispatch token."""
        if token.startswith(accounts.TOKEN_PREFIX):
            async with self.pool.acquire() as conn:
                found = await accounts.practitioner_for(conn, token)
            return None if found is None else await self.desk.member_for(found)
        return await self.desk.member_for_team_token(token)

    def csrf_token(self, session: str) -> str:
        """The board's anti-forgery token for a session: an HMAC of the session token under
        a key derived from the deployment's sealing key, so it needs no storage, is bound
        to the session and is worthless to anybody who cannot read the page."""
        key = hashlib.sha256(b"joinedup.duty.csrf|" + self.settings.key_encryption_key()
                             ).digest()
        return hmac.new(key, session.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: str, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf_token(session), token)


async def _every(seconds: float, step: Callable[[], Awaitable[object]], name: str) -> None:
    """Run ``step`` every ``seconds``, reporting (never dying of) a failed step."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(f"{name} failed; trying again", error=type(exc).__name__)
        await asyncio.sleep(seconds)


def _fallback_on_failure(desk: DutyDesk) -> Undeliverable:
    """Every delivery of an alert to a team failed: the fallback team takes it (once: a
    repeat finds it gone from that team, or acknowledged, and does nothing)."""
    async def undeliverable(alert_id: str, team_id: str) -> None:
        await desk.send_to_fallback(alert_id, team_id, "every delivery failed")
    return undeliverable


@asynccontextmanager
async def duty_side_running(settings: Settings, *, migrate: bool = True,
                            timers: bool = True, webhooks: bool = True,
                            clock: Clock = _wall_clock) -> AsyncIterator[DutySide]:
    """Everything the duty service runs. ``timers=False`` leaves the wall-clock timers to
    the caller (a test with its own clock calls ``desk.fire_due_timers``); ``webhooks=False``
    sends none."""
    if migrate:
        await wait_and_migrate(settings)
        await ensure_topics(settings)
    pool = await create_pool(settings, min_size=2, max_size=10, server_settings={
        "statement_timeout": str(settings.api_statement_timeout_ms),
        "lock_timeout": str(settings.api_lock_timeout_ms)})
    producer = make_producer(settings)
    client = httpx.AsyncClient()
    stop = asyncio.Event()
    side: DutySide | None = None
    try:
        await producer.start()
        publisher = AlertPublisher(pool, producer, settings.topics.alerts, TopicGuard(producer))
        keys = KeyRing(settings.key_encryption_key())
        desk = DutyDesk(pool, keys, LiveDelivery.from_settings(settings, clock), publisher,
                        clock)
        feed = FeedWatch(pool, settings.duty_stream_poll_seconds)
        side = DutySide(settings, pool, desk, feed, person_reads(pool, settings), clock)
        side.tasks.append(asyncio.create_task(feed.run()))
        side.tasks.append(asyncio.create_task(_every(5.0, publisher.publish, "alert outbox")))
        if timers:
            side.tasks.append(asyncio.create_task(_every(
                settings.duty_timer_interval_seconds, desk.fire_due_timers, "alert timers")))
        if webhooks:
            dispatcher = WebhookDispatcher(pool, settings, client, clock,
                                           _fallback_on_failure(desk))
            side.tasks.append(asyncio.create_task(dispatcher.run(stop)))
        yield side
    finally:
        stop.set()  # an attempt cut short stays pending: sent again, same webhook-id
        for task in side.tasks if side is not None else []:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await client.aclose()
        await producer.stop()
        await pool.close()


def server(settings: Settings, *, migrate: bool = True, timers: bool = True,
           clock: Clock = _wall_clock, **overrides: object) -> uvicorn.Server:
    from services.alerts.entrypoints.http import create_app

    options: dict[str, object] = {
        "host": settings.duty_host, "port": settings.duty_port, "log_config": None,
        "access_log": False, "proxy_headers": False, "server_header": False,
        "lifespan": "on"}
    options.update(overrides)
    app = CorrelationMiddleware(  # ids on log lines
        create_app(settings, migrate=migrate, timers=timers, clock=clock))
    return uvicorn.Server(uvicorn.Config(app, **options))  # type: ignore[arg-type]


async def serve(settings: Settings) -> None:
    """Run the duty service until SIGINT/SIGTERM (what `joinedup duty` calls).

    The database is migrated and the topics made first, so a server that cannot reach them
    says so in one line (the command's), not from inside the web server."""
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    await server(settings, migrate=False).serve()
