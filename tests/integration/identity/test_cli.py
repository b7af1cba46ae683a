"""`joinedup person` as an operator runs it: link two records, see the person with the
decision's who and why, and a bad identifier refused in one line."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys

import pytest

from services.common.events import Identifier
from services.common.settings import Settings
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.identity.helpers import person_of, settled, timeline_ids, until
from tests.integration.processor.conftest import publish

pytestmark = pytest.mark.integration

RIO = f"local_id:{f.SOURCES['MENTAL_HEALTH'].agency}/RIO-0042"


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": settings.database_url or "",
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
            "JOINEDUP_DB_SCHEMA": settings.db_schema,
            "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
            "JOINEDUP_LOG_LEVEL": "WARNING"}


async def _person(settings: Settings, *args: str) -> tuple[int | None, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.operations.cli", "person", *args, env=_env(settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def test_an_operator_links_records_and_sees_who_decided_and_why(
        running: Processor) -> None:
    settings, pool = running.settings, running.pool
    discharge = f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH")
    contact = dataclasses.replace(f.contact("follow_up", source="MENTAL_HEALTH"),
                                  identifiers=(Identifier("local_id", "RIO-0042"),))
    await publish(settings, [discharge, contact])
    await settled(running, 2)

    code, out, err = await _person(settings, "link", f"nhs_number:{f.NHS}", RIO,
                                   "--by", "J. Smith, duty manager",
                                   "--reason", "same date of birth and address on both records")
    assert code == 0, err
    assert out.startswith("merged: person ")
    person = await person_of(pool, Identifier("nhs_number", f.NHS))
    assert await until(lambda: _has_both(pool, person)) == sorted(
        [discharge.event_id, contact.event_id])

    code, out, err = await _person(settings, "show", "--identifier", RIO, "--json", "--by",
                                   "J. Smith")
    assert code == 0, err
    assert await pool.fetchval(   # looking is audited, by scheme, never the value
        "SELECT detail::text FROM access_audit WHERE action = 'read.identity' "
        "AND operator = 'J. Smith' AND person_id::text = $1", person) == (
        '{"scheme": "local_id", "channel": "cli"}')
    shown = json.loads(out)
    assert shown["current_id"] == person
    assert {(i["scheme"], i["value"]) for i in shown["identifiers"]} == {
        ("nhs_number", f.NHS), ("local_id", f"{f.SOURCES['MENTAL_HEALTH'].agency}/RIO-0042")}
    [merge] = [h for h in shown["history"] if h["kind"] == "merged"]
    assert (merge["asserted_by"], merge["actor"], merge["reason"]) == (
        "operator", "J. Smith, duty manager", "same date of birth and address on both records")
    assert f.NHS not in merge["summary"]

    code, out, err = await _person(settings, "link", "nhs_number:9434765918", RIO,
                                   "--by", "J. Smith", "--reason", "typo")
    assert code == 2 and err == "joinedup person link: nhs_number: check digit does not match\n"
    code, _, err = await _person(settings, "unlink", f"nhs_number:{f.NHS}", RIO)
    assert code == 2 and "--by" in err and "Traceback" not in err
    # a well-formed number no record holds is refused, not made a new person and linked
    code, _, err = await _person(settings, "link", "nhs_number:9999999999", RIO,
                                 "--by", "J. Smith", "--reason", "typo")
    assert (code, err) == (2, "joinedup person link: no record holds that nhs_number\n")
    assert await pool.fetchval("SELECT count(*) FROM person_index") == 2
    code, _, err = await _person(settings, "show", "--person", "not-a-uuid")
    assert (code, err) == (2, "joinedup person show: a person id is a UUID\n")


async def _has_both(pool, person):  # type: ignore[no-untyped-def]
    ids = sorted(await timeline_ids(pool, person))
    return ids if len(ids) == 2 else None
