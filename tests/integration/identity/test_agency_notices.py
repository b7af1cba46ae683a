"""An agency's notice about its own records (HMPPS's prisoner-merged: a removed NOMS number
merged into a kept one) is a link asserted by that agency, and everything follows it as it
follows an operator's; its correction (identity.unmerged) is an unlink."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from services.common.events import Identifier, IdentityNotice
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.identity.helpers import alert_of, person_of, settled, timeline_ids, until
from tests.integration.processor.conftest import publish

pytestmark = pytest.mark.integration

KEPT = Identifier("noms_number", "A1234BC")
REMOVED = Identifier("noms_number", "C3456DE")   # a second prison record of the same man
FOLLOW_UP = "mh-72h-follow-up"


def _notice(action: str, at_hours: int):  # type: ignore[no-untyped-def]
    return dataclasses.replace(
        f.event(f"identity.{action}", IdentityNotice(REMOVED.scheme, REMOVED.value),
                at=f.T0 + timedelta(hours=at_hours), source="PRISON"), identifiers=(KEPT,))


async def test_a_prisoner_merged_notice_links_the_records_and_its_correction_unlinks(
        running: Processor) -> None:
    pool = running.pool
    # The mental-health trust knew him by his NHS number and the NOMS number kept; the
    # prison in-reach team's follow-up went on the record HMPPS later merged away.
    discharge = dataclasses.replace(
        f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH"),
        identifiers=(Identifier("nhs_number", f.NHS), KEPT))
    follow_up = dataclasses.replace(
        f.contact("follow_up", at=f.T0 + timedelta(hours=30), source="MENTAL_HEALTH"),
        identifiers=(REMOVED,))
    await publish(running.settings, [discharge, follow_up])
    await settled(running, 2)
    person, other = await person_of(pool, KEPT), await person_of(pool, REMOVED)
    assert person and other and person != other
    assert (await alert_of(pool, FOLLOW_UP, discharge))["status"] == "open"

    merged = _notice("merged", 100)
    await publish(running.settings, [merged])
    await settled(running, 3)
    survivor = await until(lambda: _one_person(pool))
    resolved = await until(lambda: _alert_status(pool, discharge, "resolved"),
                           what="the alert resolved by the agency's merge")
    assert resolved["person_key"] == survivor
    change = await pool.fetchrow("SELECT asserted_by, actor FROM identity_change "
                                 "WHERE kind = 'merged'")
    assert (change["asserted_by"], change["actor"]) == ("hmp-leeds", None)
    entries = await pool.fetch("SELECT event_id::text, summary FROM timeline_entry "
                               "WHERE person_key = $1 ORDER BY occurred_at", survivor)
    assert [e["event_id"] for e in entries] == [
        discharge.event_id, follow_up.event_id, merged.event_id]
    assert entries[-1]["summary"] == "Records merged by hmp-leeds (noms number)"
    assert REMOVED.value not in entries[-1]["summary"]

    await publish(running.settings, [_notice("unmerged", 120)])
    await settled(running, 4)
    await until(lambda: _alert_status(pool, discharge, "open"),
                what="the alert reopened by the agency's correction")
    apart = await person_of(pool, REMOVED)
    assert apart is not None and apart != await person_of(pool, KEPT)
    assert await until(lambda: timeline_ids(pool, apart)) == [follow_up.event_id]


async def _one_person(pool):  # type: ignore[no-untyped-def]
    a, b = await person_of(pool, KEPT), await person_of(pool, REMOVED)
    return a if a == b else None


async def _alert_status(pool, trigger, status):  # type: ignore[no-untyped-def]
    row = await alert_of(pool, FOLLOW_UP, trigger)
    return row if row is not None and row["status"] == status else None
