"""What an operator does with webhook endpoints (``joinedup webhook ...``): register one for a
team, rotate its secret, disable and enable it, redrive a dead delivery.

A secret is shown once, when it is made, and kept only wrapped under the deployment's
key-encryption key. Rotation makes a new secret and lets the old ones sign on for the
overlap, so a receiver can switch to the new one without missing a request.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

import asyncpg

from projections.queries import webhooks as q
from services.alerts.webhooks import signing, store
from services.common.serde.sealing import wrap

#: Every action the team feed carries.
FEED_ACTIONS: Final = ("raised", "resolved", "acknowledged", "assigned", "commented",
                       "snoozed", "woke", "escalated", "unacknowledged", "evidence", "moved",
                       "reopened")
#: What an endpoint is sent unless it asks otherwise: what changes whether someone must act.
DEFAULT_ACTIONS: Final = ("raised", "escalated", "resolved", "reopened", "unacknowledged",
                          "woke")


class WebhookError(ValueError):
    """An operator's request that cannot be done (shown as one line)."""


async def _record(conn: asyncpg.Connection, by: str, action: str, team_id: str, detail: str
                  ) -> None:
    """Every change to a team's webhooks joins the duty teams' change log: where a team's
    alerts are sent is a decision about sharing them."""
    if not by.strip():
        raise WebhookError("say who is making the change (--by)")
    await conn.execute(q.RECORD_CHANGE, by, action, team_id, detail)


def check_url(url: str, production: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("a webhook URL is http(s)://host/...")
    if production and parts.scheme != "https":
        raise WebhookError("in production a webhook URL is https://")
    if parts.fragment:
        raise WebhookError("a webhook URL has no #fragment")
    return url


def shown_url(url: str) -> str:
    """The URL as printed: no user, password or query (they may hold a receiver's token)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}" + ("?…" if parts.query else "")


def check_actions(actions: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(a.strip() for a in actions if a.strip()))
    unknown = sorted(set(chosen) - set(FEED_ACTIONS))
    if unknown:
        raise WebhookError(f"unknown actions {', '.join(unknown)}; of {', '.join(FEED_ACTIONS)}")
    if not chosen:
        raise WebhookError("an endpoint wants at least one action")
    return chosen


async def _add_secret(conn: asyncpg.Connection, kek: bytes, endpoint_id: str) -> str:
    secret_id = str(uuid.uuid4())
    secret = signing.new_secret()
    await conn.execute(q.INSERT_SECRET, secret_id, endpoint_id,
                       wrap(signing.secret_bytes(secret), kek,
                            store.secret_context(endpoint_id, secret_id)))
    return secret


async def add_endpoint(conn: asyncpg.Connection, kek: bytes, team_id: str, url: str, by: str,
                       *, signal_only: bool = False, actions: Iterable[str] = DEFAULT_ACTIONS,
                       production: bool = False) -> tuple[str, str]:
    """Register an endpoint for the team, starting at its feed's end; returns its id and its
    secret (shown once)."""
    url, chosen = check_url(url, production), check_actions(actions)
    async with conn.transaction():
        if not await conn.fetchval(q.TEAM_EXISTS, team_id):
            raise WebhookError(f"no team {team_id!r}")
        endpoint_id = str(uuid.uuid4())
        await conn.execute(q.INSERT_ENDPOINT, endpoint_id, team_id, url, signal_only, chosen)
        await _record(conn, by, "webhook-added", team_id,
                      f"endpoint {endpoint_id}: {shown_url(url)}, "
                      f"{'signal-only' if signal_only else 'full'}, {' '.join(chosen)}")
        return endpoint_id, await _add_secret(conn, kek, endpoint_id)


async def endpoint(conn: asyncpg.Connection, endpoint_id: str) -> asyncpg.Record:
    try:
        uuid.UUID(endpoint_id)
    except ValueError:
        raise WebhookError(f"not an endpoint id: {endpoint_id!r}") from None
    found = await conn.fetchrow(q.ENDPOINT, endpoint_id)
    if found is None:
        raise WebhookError(f"no endpoint {endpoint_id}")
    return found


async def rotate_secret(conn: asyncpg.Connection, kek: bytes, endpoint_id: str,
                        overlap: timedelta, by: str) -> str:
    """A new secret for the endpoint; the ones it had sign on for ``overlap`` and then stop."""
    if overlap < timedelta(0):
        raise WebhookError("the overlap is not negative")
    async with conn.transaction():
        found = await endpoint(conn, endpoint_id)
        await conn.execute(q.EXPIRE_SECRETS, endpoint_id, overlap)
        await _record(conn, by, "webhook-secret-rotated", found["team_id"],
                      f"endpoint {endpoint_id}: the old secret signs for {overlap}")
        return await _add_secret(conn, kek, endpoint_id)


async def disable_endpoint(conn: asyncpg.Connection, endpoint_id: str, at: datetime, by: str,
                           reason: str = "disabled by an operator") -> bool:
    """Stop the endpoint and cancel its pending deliveries (raised and escalated alerts that
    then reached none of the team's endpoints go to the fallback)."""
    if not by.strip():
        raise WebhookError("say who is making the change (--by)")
    await endpoint(conn, endpoint_id)
    return await store.disable(conn, endpoint_id, at, reason, by)


async def enable_endpoint(conn: asyncpg.Connection, endpoint_id: str, by: str) -> bool:
    """Start it again from the feed's end (what happened meanwhile is not sent)."""
    async with conn.transaction():
        await endpoint(conn, endpoint_id)
        team_id = await conn.fetchval(q.ENABLE_ENDPOINT, endpoint_id)
        if team_id is None:
            return False
        await _record(conn, by, "webhook-enabled", team_id, f"endpoint {endpoint_id}")
        return True


async def redrive(conn: asyncpg.Connection, delivery_id: str, now: datetime, by: str) -> None:
    """A dead delivery back to pending, due now, with the whole retry schedule again."""
    try:
        uuid.UUID(delivery_id)
    except ValueError:
        raise WebhookError(f"not a delivery id: {delivery_id!r}") from None
    async with conn.transaction():
        team_id = await conn.fetchval(q.REDRIVE, delivery_id, now)
        if team_id is None:
            raise WebhookError(f"no dead delivery {delivery_id} on an enabled endpoint")
        await _record(conn, by, "webhook-redriven", team_id, f"delivery {delivery_id}")
