"""The publishing grace (JOINEDUP_DEADLINE_GRACE_SECONDS, by default 10 minutes) with the
worker's own deadline timer on the wall clock: a follow-up recorded before its deadline but
delivered after it, within the grace, meets the deadline and nothing is raised; one delivered
beyond the grace finds the alert raised and resolves it as reported late."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from services.common.events import AgencyEvent, Contact, Identifier, Transition
from services.common.identifiers import make_nhs_number
from services.processor.bootstrap import Processor
from tests.factories import SOURCES
from tests.integration.processor.conftest import publish, wait_for
from tests.integration.processor.test_backfill import tick_when_caught_up

TRUST = SOURCES["MENTAL_HEALTH"]
M = timedelta(minutes=1)
H = timedelta(hours=1)


def _discharged(nhs: str, deadline: datetime) -> list[AgencyEvent]:
    """A discharge whose 72-hour follow-up falls due at ``deadline``, and its care plan on
    time (so the follow-up is the only thing outstanding)."""
    at = deadline - 72 * H
    person = (Identifier("nhs_number", nhs),)
    return [AgencyEvent(str(uuid.uuid4()), "transition.occurred", at, at + H, TRUST, person,
                        Transition(str(uuid.uuid4()), "MENTAL_HEALTH_DISCHARGE")),
            AgencyEvent(str(uuid.uuid4()), "contact.care_plan_shared", at + H, at + H, TRUST,
                        person, Contact(str(uuid.uuid4())))]


def _followed_up(nhs: str, at: datetime) -> AgencyEvent:
    return AgencyEvent(str(uuid.uuid4()), "contact.follow_up", at, at, TRUST,
                       (Identifier("nhs_number", nhs),), Contact(str(uuid.uuid4())))


async def _archived(pool: asyncpg.Pool, expected: int) -> None:
    await wait_for(pool, f"SELECT count(*) FROM event_archive WHERE source_agency = "
                         f"'{TRUST.agency}'", expected)


async def test_a_follow_up_delivered_late_within_the_grace_raises_nothing(
        running: Processor) -> None:
    settings, pool = running.settings, running.pool
    grace = timedelta(seconds=settings.deadline_grace_seconds)
    assert grace == 10 * M  # the documented default
    now = datetime.now(UTC)
    rng = random.Random(9)
    within, beyond = make_nhs_number(rng), make_nhs_number(rng)
    # Both deadlines have passed on the wall clock: 2 minutes ago, and 15 (past the grace).
    first = _discharged(within, now - 2 * M)
    second = _discharged(beyond, now - 15 * M)
    await publish(settings, first + second)
    await _archived(pool, 4)
    await tick_when_caught_up(running)  # the timer runs before either follow-up arrives

    # Each follow-up was recorded a minute before its deadline, and is delivered only now.
    await publish(settings, [_followed_up(within, now - 3 * M),
                             _followed_up(beyond, now - 16 * M)])
    await _archived(pool, 6)
    await tick_when_caught_up(running)

    alerts = {r["trigger_event_id"]: r for r in await pool.fetch(
        "SELECT trigger_event_id::text, status, resolution, raised_at FROM alert "
        "WHERE trigger_event_id = ANY($1::uuid[])", [first[0].event_id, second[0].event_id])}
    assert first[0].event_id not in alerts  # within the grace: met, never raised
    late = alerts[second[0].event_id]
    assert late["status"] == "resolved"
    assert late["resolution"].startswith("fulfilled before the deadline but reported late")
    assert abs(late["raised_at"] - (now - 15 * M)) < timedelta(seconds=1)  # at the deadline
    statuses = {r["status"] for r in await pool.fetch(
        "SELECT status FROM expectation WHERE trigger_event_id = $1::uuid "
        "AND rule_id = 'mh-72h-follow-up'", first[0].event_id)}
    assert statuses == {"fulfilled"}
