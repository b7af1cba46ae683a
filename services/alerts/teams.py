"""Setting up duty teams: routes, areas and escalation, members and dispatch tokens.

Every change is recorded in ``duty_change`` (append-only) with who made it, in the same
transaction. Routes are read when an alert is raised, so a change applies to new alerts
only; alerts already with a team stay there until they escalate or are resolved.
"""

from __future__ import annotations

import secrets

import asyncpg

from projections.queries import duty as sql
from services.alerts.desk import TEAM_TOKEN_PREFIX
from services.alerts.routing import route_is_valid
from services.ingest.auth import token_hash


class SetUpError(ValueError):
    """A change that cannot be made; the message is safe to show."""


async def _team_exists(conn: asyncpg.Connection, team_id: str) -> None:
    if not await conn.fetch(sql.TEAMS, [team_id]):
        raise SetUpError(f"no team {team_id!r} (joinedup team create)")


async def _record(conn: asyncpg.Connection, by: str, action: str, subject: str,
                  detail: str = "") -> None:
    if not by.strip():
        raise SetUpError("say who is making the change (--by)")
    await conn.execute(sql.RECORD_CHANGE, by, action, subject, detail)


async def set_route(conn: asyncpg.Connection, route: str, team_id: str, by: str) -> None:
    """Alerts whose rule names ``route`` go to ``team_id`` (``*``: the fallback team)."""
    if not route_is_valid(route):
        raise SetUpError("a route is '*', '<service>:*' or a name a rule gives, no spaces")
    async with conn.transaction():
        await _team_exists(conn, team_id)
        await conn.execute(sql.SET_ROUTE, route, team_id, by)
        await _record(conn, by, "route-set", route, team_id)


async def remove_route(conn: asyncpg.Connection, route: str, by: str) -> None:
    async with conn.transaction():
        if await conn.fetchval(sql.REMOVE_ROUTE, route) is None:
            raise SetUpError(f"no route {route!r}")
        await _record(conn, by, "route-removed", route)


async def set_team(conn: asyncpg.Connection, team_id: str, by: str, *,
                   area: str | None = None, escalates_to: str | None = None,
                   no_escalation: bool = False, name: str | None = None) -> None:
    """A team's area, display name, and the team its unacknowledged alerts escalate to."""
    async with conn.transaction():
        await _team_exists(conn, team_id)
        if area is not None:
            await conn.execute(sql.SET_TEAM_AREA, team_id, area or None)
            await _record(conn, by, "team-area", team_id, area)
        if name is not None:
            if not name.strip():
                raise SetUpError("a team's name cannot be empty")
            await conn.execute(sql.SET_TEAM_NAME, team_id, name)
            await _record(conn, by, "team-name", team_id, name)
        if escalates_to is not None or no_escalation:
            if escalates_to == team_id:
                raise SetUpError("a team cannot escalate to itself")
            if escalates_to is not None:
                await _team_exists(conn, escalates_to)
                if await _escalation_loops(conn, team_id, escalates_to):
                    raise SetUpError("that would make escalation go round in a circle")
            await conn.execute(sql.SET_ESCALATION, team_id, escalates_to)
            await _record(conn, by, "team-escalation", team_id, escalates_to or "")


async def _escalation_loops(conn: asyncpg.Connection, team_id: str, target: str) -> bool:
    seen = {team_id}
    current: str | None = target
    while current is not None:
        if current in seen:
            return True
        seen.add(current)
        current = await conn.fetchval(sql.ESCALATES_TO, current)
    return False


async def add_member(conn: asyncpg.Connection, team_id: str, username: str, by: str) -> None:
    async with conn.transaction():
        await _team_exists(conn, team_id)
        if await conn.fetchval(sql.ADD_MEMBER, team_id, username) is None:
            if await conn.fetchval(sql.IS_MEMBER, team_id, username):
                return  # a member already
            raise SetUpError(f"no practitioner {username!r}")
        await _record(conn, by, "member-added", team_id, username)


async def remove_member(conn: asyncpg.Connection, team_id: str, username: str, by: str
                        ) -> None:
    async with conn.transaction():
        if await conn.fetchval(sql.REMOVE_MEMBER, team_id, username) is None:
            raise SetUpError(f"{username!r} is not an added member of {team_id!r} (a "
                             "practitioner's own team is changed on their account)")
        await _record(conn, by, "member-removed", team_id, username)


async def issue_token(conn: asyncpg.Connection, team_id: str, label: str, by: str) -> str:
    """A dispatch token for the team (shown once; only its hash is kept)."""
    if not label.strip() or len(label) > 64:
        raise SetUpError("label the token (1 to 64 characters), e.g. the dispatch system")
    token = TEAM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with conn.transaction():
        await _team_exists(conn, team_id)
        await conn.execute(sql.ISSUE_TEAM_TOKEN, token_hash(token), team_id, label)
        await _record(conn, by, "token-issued", team_id, label)
    return token


async def revoke_token(conn: asyncpg.Connection, team_id: str, label: str, by: str) -> int:
    async with conn.transaction():
        revoked = await conn.fetch(sql.REVOKE_TEAM_TOKENS, team_id, label)
        if not revoked:
            raise SetUpError(f"no live token labelled {label!r} for {team_id!r}")
        await _record(conn, by, "token-revoked", team_id, label)
    return len(revoked)
