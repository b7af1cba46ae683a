"""The dispatcher's PostgreSQL adapter: following the team feed into deliveries, claiming
what is due, recording each attempt and what followed, and settling undeliverable alerts.

Every change is one short transaction, never held across an HTTP request: a claimed delivery
is leased (its next attempt moved past the request's deadline), so a dispatcher that dies
mid-attempt leaves it to be tried again, and two dispatchers never take the same one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from projections.queries import webhooks as q
from services.alerts.webhooks.payload import AlertView, FeedEvent
from services.alerts.webhooks.schedule import Dead, Delivered, Gone, Outcome, Retry
from services.common.serde.sealing import unwrap


def secret_context(endpoint_id: str, secret_id: str) -> str:
    """What a wrapped secret is bound to: its endpoint and its own id."""
    return f"webhook-secret/{endpoint_id}/{secret_id}"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery taken for one attempt."""

    delivery_id: str
    endpoint_id: str
    team_id: str
    url: str
    signal_only: bool
    event: FeedEvent
    attempt: int         # its number among every attempt at this delivery
    this_round: int      # its number since the delivery was made or last redriven


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt got (never a body or a header)."""

    at: datetime
    status_code: int | None
    failure: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Unsettled:
    team_id: str
    alert_id: str
    alert_event_id: str
    delivered: bool      # some other endpoint of the team got it


class WebhookStore:
    def __init__(self, pool: asyncpg.Pool, key_encryption_key: bytes,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self._pool = pool
        self._kek = key_encryption_key
        self._new_id = new_id

    # --- the feed ----------------------------------------------------------------------------

    async def horizon(self) -> str:
        """The feed's readable end now: rows of older transactions only (xid8 as text)."""
        return str(await self._pool.fetchval(q.FEED_HORIZON))

    async def endpoints_behind(self, horizon: str) -> list[str]:
        return [r["endpoint_id"] for r in await self._pool.fetch(q.ENDPOINTS_BEHIND, horizon)]

    async def advance(self, endpoint_id: str, horizon: str, now: datetime, limit: int) -> int:
        """Move the endpoint's cursor over up to ``limit`` feed rows below ``horizon``, making
        a delivery of each whose action it wants; returns how many rows it passed (0 when
        another dispatcher holds the endpoint)."""
        async with self._pool.acquire() as conn, conn.transaction():
            endpoint = await conn.fetchrow(q.LOCK_ENDPOINT, endpoint_id)
            if endpoint is None:
                return 0
            rows = await conn.fetch(q.FEED_AFTER, endpoint["team_id"], endpoint["last_xid"],
                                    endpoint["last_seq"], horizon, limit)
            if not rows:
                return 0
            wants = set(endpoint["actions"])
            wanted = [r for r in rows if r["action"] in wants]
            if wanted:
                await conn.execute(
                    q.INSERT_DELIVERIES, [self._new_id() for _ in wanted], endpoint_id,
                    endpoint["team_id"], [r["alert_id"] for r in wanted],
                    [r["alert_event_id"] for r in wanted], [r["action"] for r in wanted],
                    [r["version"] for r in wanted], [r["recorded_at"] for r in wanted], now)
            await conn.execute(q.MOVE_CURSOR, endpoint_id, rows[-1]["xid"], rows[-1]["seq"])
            return len(rows)

    # --- attempts ----------------------------------------------------------------------------

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        rows = await self._pool.fetch(q.CLAIM_DUE, now, lease_until, limit)
        return [Claimed(r["delivery_id"], r["endpoint_id"], r["team_id"], r["url"],
                        r["signal_only"],
                        FeedEvent(r["alert_id"], r["alert_event_id"], r["action"],
                                  r["version"], r["recorded_at"]),
                        r["attempts"], r["this_round"]) for r in rows]

    async def signing_keys(self, endpoint_ids: Sequence[str], now: datetime
                           ) -> dict[str, list[bytes]]:
        """Each endpoint's live secrets, newest first, unwrapped."""
        keys: dict[str, list[bytes]] = {e: [] for e in endpoint_ids}
        for r in await self._pool.fetch(q.LIVE_SECRETS, list(endpoint_ids), now):
            keys[r["endpoint_id"]].append(unwrap(
                r["wrapped"], self._kek, secret_context(r["endpoint_id"], r["secret_id"])))
        return keys

    async def alerts(self, alert_ids: Sequence[str]) -> dict[str, AlertView]:
        return {r["alert_id"]: AlertView(
            r["team_id"], r["team_name"], r["severity"], r["rule_id"], r["title"],
            r["explanation"], r["source_reference"], r["due_at"], r["raised_at"], r["status"],
            r["person_key"]) for r in await self._pool.fetch(q.ALERT_VIEWS, list(alert_ids))}

    async def record(self, claimed: Claimed, attempt: Attempt, outcome: Outcome) -> None:
        """The attempt and what follows from it, in one transaction. A 410 disables the
        endpoint and cancels its pending deliveries (this one among them)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(q.RECORD_ATTEMPT, claimed.delivery_id, claimed.attempt,
                               attempt.at, attempt.status_code, attempt.failure,
                               attempt.duration_ms)
            if isinstance(outcome, Delivered):
                await conn.execute(q.DELIVERED, claimed.delivery_id, attempt.at)
            elif isinstance(outcome, Retry):
                await conn.execute(q.RETRY_AT, claimed.delivery_id, outcome.at)
            elif isinstance(outcome, Dead):
                await conn.execute(q.DEAD, claimed.delivery_id, attempt.at, outcome.reason)
            elif isinstance(outcome, Gone):
                await disable(conn, claimed.endpoint_id, attempt.at, outcome.reason)

    # --- undeliverable alerts ----------------------------------------------------------------

    async def unsettled(self, limit: int = 100) -> list[Unsettled]:
        return [Unsettled(r["team_id"], r["alert_id"], r["alert_event_id"], r["delivered"])
                for r in await self._pool.fetch(q.UNSETTLED, limit)]

    async def settle(self, item: Unsettled, now: datetime, handed_over: bool) -> None:
        await self._pool.execute(q.SETTLE, item.team_id, item.alert_event_id, now, handed_over)


#: who disables an endpoint that answered 410, in the duty teams' change log
DISPATCHER: Final = "webhook dispatcher"


async def disable(conn: asyncpg.Connection, endpoint_id: str, at: datetime, reason: str,
                  by: str = DISPATCHER) -> bool:
    """Disable the endpoint and cancel its pending deliveries, recording who and why in the
    duty teams' change log; False if it was not enabled."""
    async with conn.transaction():
        team_id = await conn.fetchval(q.DISABLE_ENDPOINT, endpoint_id, at, reason)
        if team_id is None:
            return False
        await conn.execute(q.CANCEL_PENDING, endpoint_id, at, reason)
        await conn.execute(q.RECORD_CHANGE, by, "webhook-disabled", team_id,
                           f"endpoint {endpoint_id}: {reason}")
        return True
