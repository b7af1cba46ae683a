"""The duty desk: what a duty team does with its alerts, and what the wall clock does to
them. Used by the alert API, the duty board and the duty service's timer loop.

Every action is taken in one transaction: the alert is locked, the member's team checked,
the action decided (``services/alerts/actions.py``), and its alert event written to the
alert outbox and applied to the read model with live delivery (the team feed and the
alert's timer); the outbox is published to the alerts topic after commit (and by the next
drain if the broker is away: nothing is lost, duplicates are swallowed by event id).

A member sees and acts on the alerts of their own teams only: any other alert is "not
found", never a hint that it exists.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

import asyncpg
import structlog

from projections.queries import alerts as alerts_sql
from projections.queries import duty as sql
from services.alerts.actions import Action, Comment, Refusal, Resolve, decide, timer_event
from services.alerts.domain import Alert
from services.alerts.escalation import escalation_for
from services.alerts.events import AlertEvent
from services.alerts.outbox import add_to_outbox
from services.alerts.read_model import LiveDelivery, project_alert_events
from services.common.serde.sealing import ERASED, SealError, person_ref, seal, unseal
from services.identity.key_ring import KeyRing
from services.ingest.auth import token_hash
from services.reads.accounts import Practitioner
from services.reads.domain.audit import Caller

log = structlog.get_logger("joinedup.duty")
_ALERT_FIELDS: Final = tuple(Alert.__dataclass_fields__)
#: how long to wait before trying a timer again that could not act (no fallback team)
RETRY_LATER: Final = timedelta(minutes=1)
#: a team's dispatch-system token (only its SHA-256 is kept)
TEAM_TOKEN_PREFIX: Final = "jdt_"


class Publishes(Protocol):
    async def publish(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Member:
    """Who is acting: a practitioner (by username) or a team's dispatch token. ``caller``
    is who reads a person's records through the governance read path (a practitioner)."""

    actor: str
    teams: frozenset[str]
    practitioner_id: str | None = None
    caller: Caller | None = None


class DeskRefused(Exception):
    """An action or read refused: ``kind`` is not_found, forbidden, conflict or invalid;
    ``alert`` is the alert as it stands (a conflict answers it, so nothing is lost)."""

    def __init__(self, kind: str, reason: str, alert: Alert | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.alert = alert


@dataclass(frozen=True, slots=True)
class Filters:
    teams: Sequence[str] = ()          # empty: all the member's teams
    status: Sequence[str] | None = None
    severity: Sequence[str] | None = None
    rule: Sequence[str] | None = None
    person: str | None = None


@dataclass(frozen=True, slots=True)
class Listed:
    alert: Alert
    team_name: str | None


@dataclass(frozen=True, slots=True)
class Page:
    alerts: list[Listed]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    alert_event_id: str
    action: str
    at: datetime
    actor: str | None
    resolution: str | None
    detail: str | None
    team_id: str | None
    tier: int | None
    assignee: str | None
    until: datetime | None
    comment: str | None            # opened (ERASED once the person's key is destroyed)
    version: int | None


@dataclass(frozen=True, slots=True)
class Detail:
    alert: Alert
    team_name: str | None
    history: list[HistoryEntry] = field(default_factory=list)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class DutyDesk:
    def __init__(self, pool: asyncpg.Pool, key_ring: KeyRing, delivery: LiveDelivery,
                 publisher: Publishes | None = None,
                 clock: Callable[[], datetime] = _wall_clock) -> None:
        self._pool = pool
        self._keys = key_ring
        self._delivery = delivery
        self._publisher = publisher
        self._clock = clock

    # --- who ------------------------------------------------------------------------------

    async def member_for(self, practitioner: Practitioner) -> Member:
        rows = await self._pool.fetch(sql.MEMBER_TEAMS, practitioner.practitioner_id)
        return Member(practitioner.username, frozenset(r["team_id"] for r in rows),
                      practitioner.practitioner_id, Caller(practitioner.reader, "practitioner"))

    async def member_for_team_token(self, token: str) -> Member | None:
        if not token.startswith(TEAM_TOKEN_PREFIX) or len(token) > 200:
            return None
        row = await self._pool.fetchrow(sql.TEAM_BY_TOKEN, token_hash(token))
        return None if row is None else Member(f"token:{row['label']}",
                                               frozenset([row["team_id"]]))

    async def teams(self, member: Member) -> list[asyncpg.Record]:
        return list(await self._pool.fetch(sql.TEAMS, sorted(member.teams)))

    async def members(self, member: Member, team_id: str) -> list[str]:
        self._require_team(member, team_id)
        return [r["username"] for r in await self._pool.fetch(sql.MEMBERS, team_id)]

    # --- reading --------------------------------------------------------------------------

    async def alerts(self, member: Member, filters: Filters, cursor: str | None = None,
                     limit: int = 50) -> Page:
        teams = list(filters.teams) or sorted(member.teams)
        for team in teams:
            self._require_team(member, team)
        after = _decode_cursor(cursor) if cursor else (None, None, None, None)
        rows = await self._pool.fetch(
            sql.ALERT_PAGE, teams, _or_none(filters.status), _or_none(filters.severity),
            _or_none(filters.rule), filters.person, *after, limit + 1)
        listed = [Listed(_alert(r), r["team_name"]) for r in rows[:limit]]
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        return Page(listed, _encode_cursor(last) if last is not None else None)

    async def alert(self, member: Member, alert_id: str) -> Detail:
        row = await self._visible(member, alert_id)
        async with self._pool.acquire() as conn:
            history = await conn.fetch(alerts_sql.ALERT_HISTORY, row["alert_id"])
            sealed = [h["comment"] for h in history if h["comment"]]
            keys = await self._keys.keys(conn, [person_ref(row["person_key"])], hold=False
                                         ) if sealed else {}
        key = keys.get(person_ref(row["person_key"]))
        return Detail(_alert(row), row["team_name"], [
            HistoryEntry(h["alert_event_id"], h["action"], h["at"], h["actor"],
                         h["resolution"], h["detail"], h["team_id"], h["tier"], h["assignee"],
                         h["until"], _opened(h["comment"], key, _context(
                             row["alert_id"], h["alert_event_id"])), h["version"])
            for h in history])

    async def summary(self, member: Member, alert_id: str) -> Listed:
        """The alert without its history (what a stream entry carries)."""
        row = await self._visible(member, alert_id)
        return Listed(_alert(row), row["team_name"])

    async def team_name(self, team_id: str | None) -> str | None:
        if team_id is None:
            return None
        return await self._pool.fetchval(sql.TEAM_NAME, team_id)  # type: ignore[no-any-return]

    async def _visible(self, member: Member, alert_id: str) -> asyncpg.Record:
        if _uuid(alert_id) is None:
            raise DeskRefused("not_found", "no such alert")
        row = await self._pool.fetchrow(sql.ALERT, alert_id)
        if row is None or row["team_id"] not in member.teams:
            raise DeskRefused("not_found", "no such alert")
        return row

    def _require_team(self, member: Member, team_id: str) -> None:
        if team_id not in member.teams:
            raise DeskRefused("forbidden", "not one of your teams")

    # --- acting ---------------------------------------------------------------------------

    async def act(self, member: Member, alert_id: str, action: Action) -> Alert:
        """Take ``action`` on the alert; returns the alert after it. Refused with the alert
        as it stands if another action came first (conflict)."""
        if _uuid(alert_id) is None:
            raise DeskRefused("not_found", "no such alert")
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            alert = await _locked(conn, alert_id)
            if alert is None or alert.team_id not in member.teams:
                raise DeskRefused("not_found", "no such alert")
            decided = decide(alert, action, member.actor, now)
            if isinstance(decided, Refusal):
                raise DeskRefused(decided.kind, decided.reason, alert)
            if decided.action == "assigned" and decided.assignee is not None and not (
                    await conn.fetchval(sql.IS_MEMBER, alert.team_id, decided.assignee)):
                raise DeskRefused("invalid", "the assignee is not a member of the alert's team",
                                  alert)
            if isinstance(action, Comment | Resolve) and decided.comment:
                decided = await self._sealed(conn, alert, decided)
            after = await self._record(conn, [decided], alert_id)
        await self._publish()
        return after

    async def _sealed(self, conn: asyncpg.Connection, alert: Alert, event: AlertEvent
                      ) -> AlertEvent:
        """Free text may name the person: sealed with their data key, so erasing them
        makes it unreadable everywhere (the topic, the history)."""
        ref = person_ref(alert.person_key)
        key = (await self._keys.keys(conn, [ref])).get(ref)
        if key is None:
            raise DeskRefused("conflict", "the person's records are erased: no comments", alert)
        text = seal(event.comment or "", key, ref,
                    _context(alert.alert_id, event.alert_event_id))
        return dataclasses.replace(event, comment=text)

    async def _record(self, conn: asyncpg.Connection, events: Sequence[AlertEvent],
                      alert_id: str) -> Alert:
        await add_to_outbox(conn, events)
        await project_alert_events(conn, events, self._delivery)
        after = await _locked(conn, alert_id)
        assert after is not None
        return after

    async def _publish(self) -> None:
        if self._publisher is None:
            return
        try:
            await self._publisher.publish()
        except Exception as exc:  # the outbox keeps it: the next drain publishes it
            log.warning("alert events left in the outbox", error=type(exc).__name__)

    # --- the wall clock -------------------------------------------------------------------

    async def fire_due_timers(self, limit: int = 200) -> int:
        """Act on every timer due by now (escalate, reopen an acknowledgement left too long,
        wake a snoozed alert); returns how many alert events that made.

        Each timer in its own transaction, taking the alert's lock before the timer's, as
        every writer does (an action locks the alert, then sets its timer): the other order
        would deadlock with a member acting on the alert at that moment. Several duty
        services can run this at once: a timer another one holds is skipped."""
        now = self._clock()
        made = 0
        async with self._pool.acquire() as conn:
            for due in await conn.fetch(sql.DUE_TIMERS, now, limit):
                async with conn.transaction():
                    made += await self._fire(conn, due["alert_id"], now)
        if made:
            await self._publish()
        return made

    async def _fire(self, conn: asyncpg.Connection, alert_id: str, now: datetime) -> int:
        alert = await _locked(conn, alert_id)
        kind = None if alert is None else await conn.fetchval(sql.TAKE_DUE_TIMER, alert_id, now)
        if alert is None or kind is None:  # gone, changed meanwhile, or another one's
            return 0
        event = await self._timer_event(conn, alert, kind, now)
        if event is None:
            return 0
        if event is _LATER:
            await conn.execute(sql.POSTPONE_TIMER, alert.alert_id, now + RETRY_LATER)
            return 0
        assert isinstance(event, AlertEvent)
        await self._record(conn, [event], alert.alert_id)
        log.info("alert timer fired", alert_id=alert.alert_id, action=event.action)
        return 1

    async def _timer_event(self, conn: asyncpg.Connection, alert: Alert, kind: str,
                           now: datetime) -> AlertEvent | object | None:
        """What the timer does to the alert as it stands (None: nothing, and the timer goes;
        the alert moved on since it was set)."""
        if kind == "wake" and alert.status == "snoozed":
            return timer_event(alert, "woke", now)
        if kind == "acknowledgement" and alert.status == "acknowledged":
            return timer_event(alert, "unacknowledged", now,
                               detail="acknowledged and not resolved in time")
        if kind == "escalate" and alert.working and alert.status == "open":
            return await self._escalation(conn, alert, now, None)
        await conn.execute(sql.CLEAR_TIMER, alert.alert_id)
        return None

    async def _escalation(self, conn: asyncpg.Connection, alert: Alert, now: datetime,
                          reason: str | None) -> AlertEvent | object | None:
        fallback = await conn.fetchval(sql.FALLBACK_TEAM)
        escalates_to = None if alert.team_id is None or reason is not None else (
            await conn.fetchval(sql.ESCALATES_TO, alert.team_id))
        step = escalation_for(alert, escalates_to, fallback)
        if step is None and fallback is None:
            log.error("alert cannot reach anybody: no fallback team (joinedup route set '*')",
                      alert_id=alert.alert_id)
            return _LATER
        if step is None:  # with the fallback team already: it stays there, on their board
            await conn.execute(sql.CLEAR_TIMER, alert.alert_id)
            return None
        return timer_event(alert, "escalated", now, team_id=step.team_id, tier=step.tier,
                           detail=reason or step.reason)

    async def send_to_fallback(self, alert_id: str, team_id: str, reason: str) -> bool:
        """Every delivery of the alert to ``team_id`` failed: the fallback team takes it, if
        it is still with that team and nobody has acknowledged it. True if it moved."""
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            alert = await _locked(conn, alert_id)
            if (alert is None or alert.team_id != team_id or alert.status != "open"):
                return False
            event = await self._escalation(conn, alert, now, reason)
            if not isinstance(event, AlertEvent):
                return False
            await self._record(conn, [event], alert_id)
        log.warning("alert sent to the fallback team", alert_id=alert_id, reason=reason)
        await self._publish()
        return True


_LATER: Final = object()


async def _locked(conn: asyncpg.Connection, alert_id: str) -> Alert | None:
    rows = await conn.fetch(alerts_sql.ALERTS_TO_FOLD, [alert_id])
    return Alert(**dict(rows[0])) if rows else None


def _alert(row: asyncpg.Record) -> Alert:
    return Alert(**{name: row[name] for name in _ALERT_FIELDS})


def _context(alert_id: str, alert_event_id: str) -> str:
    return f"alert/{alert_id}/{alert_event_id}/comment"


def _opened(value: str | None, key: bytes | None, context: str) -> str | None:
    if value is None:
        return None
    if key is None:
        return ERASED
    try:
        return unseal(value, key, context)
    except SealError:
        return ERASED


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        return None


def _or_none(values: Sequence[str] | None) -> list[str] | None:
    return list(values) if values else None


def _encode_cursor(row: asyncpg.Record) -> str:
    key = [row["status_rank"], row["severity_rank"], row["urgent_at"].isoformat(),
           row["alert_id"]]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int, datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        status, severity, at, alert_id = json.loads(raw)
        return int(status), int(severity), datetime.fromisoformat(at), uuid.UUID(alert_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise DeskRefused("invalid", "the cursor is not one this API gave") from None
