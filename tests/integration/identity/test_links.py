"""Everything follows links, on the real broker and PostgreSQL: a link of records makes a
false alert go and a real one come, an unlink undoes it, a manual split holds, and one
person's events stay in one partition, in order, across a link."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from services.common.events import Identifier
from services.identity import operator
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.identity.helpers import (
    alert_of,
    as_operator,
    history_of,
    person_of,
    settled,
    timeline_ids,
    until,
)
from tests.integration.processor.conftest import publish

pytestmark = pytest.mark.integration

FOLLOW_UP = "mh-72h-follow-up"
STUCK = "stuck-between-services"
NHS = Identifier("nhs_number", f.NHS)
RIO = Identifier("local_id", "RIO-0042")      # the community team's own record of the person
NEBULA = Identifier("local_id", "NEB-77")      # the drug service's
# as the person index holds them (and an operator names them): qualified by their agency
RIO_INDEXED = Identifier("local_id", f"{f.SOURCES['MENTAL_HEALTH'].agency}/RIO-0042")
NEBULA_INDEXED = Identifier("local_id", f"{f.SOURCES['SUBSTANCE_USE'].agency}/NEB-77")


def under(event, *identifiers: Identifier):  # type: ignore[no-untyped-def]
    return dataclasses.replace(event, identifiers=tuple(identifiers))


async def test_a_link_resolves_a_false_no_follow_up_alert_and_an_unlink_reopens_it(
        running: Processor) -> None:
    pool = running.pool
    discharge = f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH")
    # the follow-up came the next day, recorded by a team that only had its own local id
    follow_up = under(f.contact("follow_up", at=f.T0 + timedelta(hours=24),
                                source="MENTAL_HEALTH"), RIO)
    await publish(running.settings, [discharge, follow_up])
    await settled(running, 2)
    ward, community = await person_of(pool, NHS), await person_of(pool, RIO_INDEXED)
    assert ward and community and ward != community
    alert = await alert_of(pool, FOLLOW_UP, discharge)
    assert alert is not None and alert["status"] == "open"   # a gap, as far as anyone knew
    assert alert["person_key"] == ward

    # Linked after the deadline: the follow-up was this person's; the alert resolves.
    await as_operator(running, operator.linking(NHS, RIO_INDEXED))
    resolved = await until(lambda: _with_status(pool, discharge, "resolved"),
                           what="the alert resolved by the link")
    assert resolved["resolution"].startswith("records linked: met")
    assert await person_of(pool, RIO_INDEXED) == ward
    assert await timeline_ids(pool, ward) == [discharge.event_id, follow_up.event_id]
    assert await timeline_ids(pool, community) == []
    caseload = await pool.fetch("SELECT DISTINCT person_key FROM caseload")
    assert [r["person_key"] for r in caseload] == [ward]

    # Unlinked: two people again, and the alert the link had resolved reopens.
    await as_operator(running, operator.unlinking(NHS, RIO_INDEXED), "the RiO record is another man")
    reopened = await until(lambda: _with_status(pool, discharge, "open"),
                           what="the alert reopened by the unlink")
    assert reopened["person_key"] == ward
    assert await person_of(pool, RIO_INDEXED) == community        # the old person id, revived
    assert await until(lambda: timeline_ids(pool, community)) == [follow_up.event_id]
    assert await timeline_ids(pool, ward) == [discharge.event_id]
    assert await history_of(pool, alert["alert_id"]) == ["raised", "resolved", "reopened"]


async def test_a_link_makes_a_real_alert_appear(running: Processor) -> None:
    """Two services each declined, citing the other's need: invisible while the declines
    were two people's, an alert once the records are linked."""
    pool = running.pool
    mental_health = f.referral("declined", "r-mh", to="MENTAL_HEALTH", source="MENTAL_HEALTH",
                               decline_reason="CITES_OTHER_NEED_FIRST",
                               cites_service_kind="SUBSTANCE_USE")
    drugs = under(f.referral("declined", "r-su", to="SUBSTANCE_USE", source="SUBSTANCE_USE",
                             at=f.T0 + timedelta(days=3),
                             decline_reason="CITES_OTHER_NEED_FIRST",
                             cites_service_kind="MENTAL_HEALTH"), NEBULA)
    await publish(running.settings, [mental_health, drugs])
    await settled(running, 2)
    assert await pool.fetchval("SELECT count(*) FROM alert WHERE rule_id = $1", STUCK) == 0

    await as_operator(running, operator.linking(NHS, NEBULA_INDEXED))
    person = await person_of(pool, NHS)
    raised = await until(lambda: pool.fetchrow(
        "SELECT person_key, status FROM alert WHERE rule_id = $1", STUCK),
        what="the stuck-between-services alert")
    assert (raised["person_key"], raised["status"]) == (person, "open")
    referrals = await pool.fetch("SELECT referral_id FROM referral WHERE person_key = $1 "
                                 "ORDER BY referral_id", person)
    assert [r["referral_id"] for r in referrals] == ["r-mh", "r-su"]


async def test_a_manual_split_is_not_merged_again_by_the_rule(running: Processor) -> None:
    pool = running.pool
    noms = Identifier("noms_number", "A1234BC")
    crn = Identifier("crn", "X123456")
    release = under(f.transition("occurred", "PRISON_RELEASE", reason="RELEASED"), NHS, noms)
    visit = under(f.contact("attended", at=f.T0 + timedelta(days=1), source="PROBATION"),
                  noms)
    await publish(running.settings, [release, visit])
    await settled(running, 2)
    person = await person_of(pool, NHS)
    assert await person_of(pool, noms) == person
    assert await timeline_ids(pool, person) == [release.event_id, visit.event_id]

    # The NOMS number was another prisoner's: split off, it takes the events it names first
    # (the release names the NHS number first, so it stays).
    await as_operator(running, operator.splitting([noms]), "two prisoners' records mixed")
    apart = await person_of(pool, noms)
    assert apart is not None and apart != person
    assert await until(lambda: timeline_ids(pool, apart)) == [visit.event_id]
    # An event with both strong identifiers (and a third) would merge them by the rule;
    # after the operator's split it does not: it goes to the NHS number's person, and the
    # pair is left for an operator as a possible match.
    again = under(f.contact("attended", at=f.T0 + timedelta(days=2), source="PROBATION"),
                  NHS, noms, crn)
    await publish(running.settings, [again])
    await settled(running, 3)
    assert await person_of(pool, NHS) == person and await person_of(pool, noms) == apart
    assert await person_of(pool, crn) == person
    assert await pool.fetchval(
        "SELECT count(*) FROM identity_change WHERE kind = 'possible_match'") >= 1
    assert await until(lambda: _has(pool, person, 2))
    assert await timeline_ids(pool, person) == [release.event_id, again.event_id]
    assert await timeline_ids(pool, apart) == [visit.event_id]


async def _has(pool, person, n):  # type: ignore[no-untyped-def]
    return len(await timeline_ids(pool, person)) >= n


async def _with_status(pool, trigger, status):  # type: ignore[no-untyped-def]
    row = await alert_of(pool, FOLLOW_UP, trigger)
    return row if row is not None and row["status"] == status else None
