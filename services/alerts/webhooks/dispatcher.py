"""The webhook dispatcher: follows every enabled endpoint's team feed into deliveries, makes
the attempts that are due (a bounded number at once), and hands alerts that reached none of
their team's endpoints to ``on_undeliverable``.

``step(now)`` does one round and waits for its attempts (what tests and a one-off run call);
``run(stop)`` repeats rounds every ``webhook_poll_seconds`` without waiting for slow
receivers: a new round starts attempts while earlier ones are still in flight, up to
``webhook_concurrency`` in all. Time comes from the injected clock, so tests jump it across
the retry schedule instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final, Protocol

import asyncpg
import httpx
import structlog

from services.alerts.webhooks import payload, schedule, signing
from services.alerts.webhooks.store import Attempt, Claimed, Unsettled, WebhookStore
from services.common.db import DATABASE_UNAVAILABLE
from services.common.settings import Settings

log = structlog.get_logger("joinedup.webhooks")

Clock = Callable[[], datetime]
#: How far past its deadline a claimed attempt stays leased to its dispatcher.
LEASE_MARGIN: Final = timedelta(seconds=60)
#: Feed rows one endpoint's cursor passes in one go.
FEED_BATCH: Final = 500
#: After a failing on_undeliverable, how long before settling is tried again.
SETTLE_BACKOFF: Final = timedelta(seconds=30)
_FAILURES: Final[tuple[tuple[type[Exception], str], ...]] = (
    (httpx.TimeoutException, "timeout"),
    (httpx.ConnectError, "connect"),
    (httpx.RemoteProtocolError, "protocol"),
    (httpx.UnsupportedProtocol, "url"),
    (httpx.TransportError, "transport"),
    (httpx.InvalidURL, "url"),
)
_USER_AGENT: Final = "joinedup-webhooks/1"


class Undeliverable(Protocol):
    """Called (at least once) when a raised or escalated alert event reached none of its
    team's webhook endpoints: every delivery of it is dead or cancelled. Idempotent by
    (alert, team), e.g. by sending the alert on to the fallback team."""

    async def __call__(self, alert_id: str, team_id: str) -> None: ...


class _WithoutRequestLines(logging.Filter):
    """httpx logs every request's URL at INFO; an endpoint's URL may carry a token in its
    query string, so those lines are dropped (ours say what happened, by id)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("HTTP Request:")


def _quiet_httpx() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _WithoutRequestLines) for f in logger.filters):
        logger.addFilter(_WithoutRequestLines())


def failure_class(exc: Exception) -> str:
    return next((name for kind, name in _FAILURES if isinstance(exc, kind)), "error")


class WebhookDispatcher:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, client: httpx.AsyncClient,
                 clock: Clock, on_undeliverable: Undeliverable, *,
                 jitter: Callable[[], float] = random.random) -> None:
        self._store = WebhookStore(pool, settings.key_encryption_key())
        self._client = client
        self._clock = clock
        self._on_undeliverable = on_undeliverable
        self._jitter = jitter
        self._public_url = settings.duty_public_url
        self._timeout = settings.webhook_timeout_seconds
        self._poll = settings.webhook_poll_seconds
        self._slots = settings.webhook_concurrency
        self._retry = (settings.retry_initial_seconds, settings.retry_max_seconds)
        self._lease = timedelta(seconds=self._timeout) + LEASE_MARGIN
        self._in_flight: set[asyncio.Task[None]] = set()
        self._settle_after: datetime | None = None
        _quiet_httpx()

    async def step(self, now: datetime) -> int:
        """One round at ``now``: feeds followed, due attempts made (and awaited), undeliverable
        alerts settled. Returns how many attempts it made."""
        started = await self._round(now)
        await self._drain()
        await self._settle(now)
        return started

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop`` is set; then the attempts in flight are finished."""
        backoff = self._retry[0]
        try:
            while not stop.is_set():
                try:
                    started = await self._round(self._clock())
                    await self._settle(self._clock())
                    backoff = self._retry[0]
                except DATABASE_UNAVAILABLE as exc:
                    log.warning("webhook.database_unavailable", error=type(exc).__name__,
                                retry_in=backoff)
                    await _wait(stop, backoff)
                    backoff = min(backoff * 2, self._retry[1])
                    continue
                if not started:
                    await _wait(stop, self._poll, self._in_flight)
        finally:
            await self._drain(raise_errors=False)

    # --- one round ---------------------------------------------------------------------------

    async def _round(self, now: datetime) -> int:
        await self._follow_feeds(now)
        free = self._slots - len(self._in_flight)
        if free <= 0:
            return 0
        claimed = await self._store.claim(now, now + self._lease, free)
        if not claimed:
            return 0
        keys = await self._store.signing_keys(sorted({c.endpoint_id for c in claimed}), now)
        alerts = await self._store.alerts(sorted({c.event.alert_id for c in claimed}))
        for c in claimed:
            task = asyncio.create_task(self._attempt(c, keys[c.endpoint_id],
                                                     alerts.get(c.event.alert_id)))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    async def _follow_feeds(self, now: datetime) -> None:
        horizon = await self._store.horizon()
        for endpoint_id in await self._store.endpoints_behind(horizon):
            while await self._store.advance(endpoint_id, horizon, now, FEED_BATCH) == FEED_BATCH:
                pass

    async def _attempt(self, claimed: Claimed, keys: list[bytes],
                       alert: payload.AlertView | None) -> None:
        body = payload.body(claimed.event, alert, claimed.signal_only, self._public_url)
        sent = self._clock()
        headers = {"content-type": body.content_type, "user-agent": _USER_AGENT,
                   **signing.headers(keys, claimed.delivery_id, int(sent.timestamp()),
                                     body.content)}
        status: int | None = None
        failure: str | None = None
        retry_after: str | None = None
        began = time.monotonic()
        try:
            async with self._client.stream("POST", claimed.url, content=body.content,
                                           headers=headers, timeout=self._timeout,
                                           follow_redirects=False) as answer:
                status, retry_after = answer.status_code, answer.headers.get("retry-after")
        except httpx.HTTPError as exc:
            failure = failure_class(exc)
        duration_ms = int((time.monotonic() - began) * 1000)
        now = self._clock()
        outcome = schedule.decide(claimed.this_round, status, failure, retry_after, now,
                                  self._jitter())
        await self._store.record(claimed, Attempt(sent, status, failure, duration_ms), outcome)
        _log_outcome(claimed, status, failure, outcome)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Its delivery stays leased and is tried again when the lease ends.
            log.error("webhook.attempt_failed", error=type(task.exception()).__name__)

    async def _drain(self, raise_errors: bool = True) -> None:
        while self._in_flight:
            results = await asyncio.gather(*list(self._in_flight), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors and raise_errors:
                raise errors[0]

    # --- alerts that reached nobody ----------------------------------------------------------

    async def _settle(self, now: datetime) -> None:
        if self._settle_after is not None and now < self._settle_after:
            return
        for item in await self._store.unsettled():
            if not item.delivered and not await self._hand_over(item):
                self._settle_after = now + SETTLE_BACKOFF
                return
            await self._store.settle(item, now, handed_over=not item.delivered)
        self._settle_after = None

    async def _hand_over(self, item: Unsettled) -> bool:
        try:
            await self._on_undeliverable(item.alert_id, item.team_id)
        except Exception:
            log.exception("webhook.hand_over_failed", alert_id=item.alert_id,
                          team_id=item.team_id, alert_event_id=item.alert_event_id)
            return False
        log.warning("webhook.handed_over", alert_id=item.alert_id, team_id=item.team_id,
                    alert_event_id=item.alert_event_id)
        return True


def _log_outcome(claimed: Claimed, status: int | None, failure: str | None,
                 outcome: schedule.Outcome) -> None:
    ids = {"delivery_id": claimed.delivery_id, "endpoint_id": claimed.endpoint_id,
           "alert_id": claimed.event.alert_id, "action": claimed.event.action,
           "attempt": claimed.attempt, "status_code": status, "failure": failure}
    if isinstance(outcome, schedule.Delivered):
        log.info("webhook.delivered", **ids)
    elif isinstance(outcome, schedule.Retry):
        log.info("webhook.retry", next_attempt_at=outcome.at.isoformat(), **ids)
    elif isinstance(outcome, schedule.Dead):
        log.warning("webhook.dead", **ids)
    else:
        log.warning("webhook.endpoint_gone", **ids)


async def _wait(stop: asyncio.Event, seconds: float,
                in_flight: set[asyncio.Task[None]] | None = None) -> None:
    """Until ``stop`` is set, an attempt in flight finishes (a slot is free), or ``seconds``."""
    stopping: asyncio.Task[bool] = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({stopping, *(in_flight or ())}, timeout=seconds,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
