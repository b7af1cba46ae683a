"""Two people with open expectations under each are merged, then unlinked: the alerts and
timelines the live pipeline ends with equal a replay of the same log (the archive, refiled
by the regroups, folded again into a shadow schema)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from rich.console import Console

from services.common.events import Identifier
from services.identity import operator
from services.operations.rebuild import Rebuild, quoted
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.identity.helpers import as_operator, person_of, settled, until
from tests.integration.processor.conftest import publish

pytestmark = pytest.mark.integration

NHS = Identifier("nhs_number", f.NHS)
NOMS = Identifier("noms_number", "B2345CD")

ALERTS = "SELECT alert_id::text, person_key, rule_id, status, due_at FROM {schema}.alert"
TIMELINES = "SELECT person_key, event_id::text FROM {schema}.timeline_entry"
EXPECTATIONS = "SELECT expectation_id::text, person_key, status FROM {schema}.expectation"


async def test_merge_then_unlink_equals_a_replay_of_the_log(running: Processor) -> None:
    settings, pool = running.settings, running.pool
    # Under the NHS number: a mental-health discharge (72-hour follow-up expected).
    discharge = f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH")
    # Under the NOMS number: a release with no fixed abode (its own expectations), and the
    # prison in-reach team's follow-up the next day, which would meet the discharge's.
    release = dataclasses.replace(
        f.transition("occurred", "PRISON_RELEASE", "t-2", reason="RELEASED",
                     accommodation_on_leaving="NO_FIXED_ABODE",
                     at=f.T0 + timedelta(hours=2)), identifiers=(NOMS,))
    in_reach = dataclasses.replace(
        f.contact("follow_up", at=f.T0 + timedelta(hours=24), source="MENTAL_HEALTH"),
        identifiers=(NOMS,))
    await publish(settings, [discharge, release, in_reach])
    await settled(running, 3)
    before = await _rows(pool, settings.db_schema, ALERTS)
    assert len({r[1] for r in before}) == 2  # open alerts under each person

    await as_operator(running, operator.linking(NHS, NOMS))
    one = await person_of(pool, NHS)
    await until(lambda: _all_under(pool, one), what="every alert under the linked person")
    await as_operator(running, operator.unlinking(NHS, NOMS), "two different people")
    await until(lambda: _people_with_alerts(pool, 2), what="the alerts apart again")
    while await running.deadlines.tick():
        pass

    rebuild = Rebuild(settings, console=Console(quiet=True), workers=1)
    await rebuild.run()
    live, shadow = quoted(settings.db_schema), quoted(rebuild.shadow)
    for query in (ALERTS, TIMELINES, EXPECTATIONS):
        assert await _rows(pool, live, query) == await _rows(pool, shadow, query), query
    alerts = await _rows(pool, live, ALERTS)
    assert {r[1] for r in alerts} == {await person_of(pool, NHS), await person_of(pool, NOMS)}
    follow_up = [r for r in alerts if r[2] == "mh-72h-follow-up"]
    assert [r[3] for r in follow_up] == ["open"]  # reopened by the unlink, as on replay


async def _rows(pool, schema: str, query: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    return sorted(tuple(r) for r in await pool.fetch(query.format(schema=schema)))


async def _all_under(pool, person: str) -> bool:  # type: ignore[no-untyped-def]
    people = {r["person_key"] for r in await pool.fetch("SELECT person_key FROM alert")}
    return people == {person}


async def _people_with_alerts(pool, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len({r["person_key"] for r in await pool.fetch("SELECT person_key FROM alert")}) == n
