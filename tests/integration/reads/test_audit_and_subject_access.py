"""The access audit answers "who looked at this record" and cannot be changed; the
subject-access report lists every entry, share and read of one person, and nothing of
anyone else."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from tests.integration.reads.conftest import World
from tests.integration.reads.test_visibility_everywhere import DRUGS, HOUSING, cli, everything

pytestmark = pytest.mark.integration


async def test_who_looked_is_answered_and_the_audit_is_append_only(world: World) -> None:
    person = world.person()
    await everything(world, "housing.officer", person, purpose="safeguarding")
    await everything(world, world.agency_tokens[DRUGS], person)
    code, out, err = await cli(world.settings, "audit", "--person", person, "--by",
                               "ig officer (test)", "--json")
    assert code == 0, err
    entries = [json.loads(line) for line in out.splitlines()]
    reads = {(e["username"] or e["reader_kind"], e["agency_id"], e["action"], e["purpose"])
             for e in entries}
    assert ("housing.officer", HOUSING, "read.timeline", "safeguarding") in reads
    assert ("agency_system", DRUGS, "read.alerts", "direct_care") in reads
    withheld = next(e for e in entries if e["username"] == "housing.officer"
                    and e["action"] == "read.timeline")
    assert withheld["detail"]["withheld"] == 3 and withheld["detail"]["items"] == 4
    # asking is itself recorded
    async with world.as_user("ig.officer") as ig:
        log = await ig.get(f"/v1/people/{person}/access-log", params={"purpose": "audit"})
        assert log.status_code == 200
        assert any(e["operator"] == "ig officer (test)" and e["action"] == "read.access_log"
                   for e in log.json()["items"])
    async with world.as_user("housing.officer") as officer:
        refused = await officer.get(f"/v1/people/{person}/access-log",
                                    params={"purpose": "audit"})
        assert refused.status_code == 403
    for statement in ("UPDATE access_audit SET purpose = 'audit'", "DELETE FROM access_audit",
                      "TRUNCATE access_audit", "DELETE FROM governance_event"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await world.pool.execute(statement)


async def test_the_subject_access_report_lists_everything_of_the_person_and_nobody_else(
        world: World, tmp_path: Path) -> None:
    person, other = world.person(), world.person()
    drugs_event = next(e for e in world.events[person] if e.source.agency == DRUGS)
    async with world.as_user("drugs.worker") as drugs:
        disclosed = await drugs.post(f"/v1/people/{person}/disclosures", json={
            "entry_event_id": drugs_event.event_id, "to_agency": HOUSING,
            "legal_basis": "safeguarding", "reason": "tenancy at risk"})
        assert disclosed.status_code == 201, disclosed.text
    await everything(world, "housing.officer", person)
    await everything(world, "housing.officer", other)   # someone else's reads: not listed

    code, _, err = await cli(world.settings, "subject-access", "--identifier",
                             f"nhs_number:{world.nhs[person]}", "--by", "ig officer (test)",
                             "--json", str(tmp_path / "report.json"), "--html",
                             str(tmp_path / "report.html"))
    assert code == 0, err
    text = (tmp_path / "report.json").read_text()
    report = json.loads(text)
    assert report["person_id"] == person
    assert report["identifiers"] == [{"scheme": "nhs_number", "value": world.nhs[person]}]
    assert {r["event_id"] for r in report["records"]} == {
        e.event_id for e in world.events[person]}
    assert {r["source"]["agency"] for r in report["records"]} == {
        e.source.agency for e in world.events[person]}
    assert all(r["summary"] for r in report["records"])
    shares = report["shared_with"]
    assert {"to_agency": HOUSING, "how": "disclosure", "grounds": "safeguarding",
            "items": [drugs_event.event_id]}.items() <= shares[0].items()
    assert any(s["how"] == "read.timeline" and s["to_agency"] == HOUSING
               and drugs_event.event_id in s["items"] for s in shares)
    readers = {(a["username"], a["action"]) for a in report["access_log"]}
    assert ("housing.officer", "read.timeline") in readers
    assert ("drugs.worker", "entry.disclosed") in readers
    assert report["governance"]["disclosures"][0]["reason"] == "tenancy at risk"
    # nothing of anyone else
    for someone in (p for p in world.people if p != person):
        assert someone not in text
        assert world.nhs[someone] not in text
    assert len(report["access_log"]) == len(await world.pool.fetch(
        "SELECT 1 FROM access_audit WHERE person_id = $1::uuid AND action <> 'subject_access'",
        person))
    html = (tmp_path / "report.html").read_text()
    assert "Your records held by joinedup" in html and world.nhs[person] in html
    # producing it was audited
    assert await world.pool.fetchval(
        "SELECT count(*) FROM access_audit WHERE person_id = $1::uuid "
        "AND action = 'subject_access' AND operator = 'ig officer (test)'", person) == 1
