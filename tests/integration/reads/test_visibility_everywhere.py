"""Who sees what, through every read of the API and the CLI, on the real servers: another
agency's restricted entries stay "Confidential" unless consent, the lead professional's
grant or a disclosure opens them, and each change takes effect on the next read."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.common.settings import Settings
from tests.integration.reads.conftest import World

pytestmark = pytest.mark.integration

READS = ("timeline", "referrals", "expectations", "alerts")
DRUGS, MENTAL_HEALTH, PRISON, HOUSING = ("forward-leeds", "mh-trust-leeds", "hmp-leeds",
                                        "leeds-housing")


async def everything(world: World, username_or_token: str, person: str,
                     purpose: str = "direct_care") -> dict[str, Any]:
    """Every read of the person, as JSON, with the raw text of each answer."""
    token = world.tokens.get(username_or_token, username_or_token)
    out: dict[str, Any] = {"text": ""}
    async with world.client(token) as client:
        summary = await client.get(f"/v1/people/{person}", params={"purpose": purpose})
        assert summary.status_code == 200, summary.text
        out["summary"], out["text"] = summary.json(), summary.text
        for read in READS:
            answer = await client.get(f"/v1/people/{person}/{read}",
                                      params={"purpose": purpose})
            assert answer.status_code == 200, answer.text
            out[read] = answer.json()["items"]
            out["text"] += answer.text
    return out


def entry_of(found: dict[str, Any], agency: str, world: World, person: str) -> dict[str, Any]:
    """The timeline item of the person's entry recorded by ``agency``."""
    event_id = next(e.event_id for e in world.events[person] if e.source.agency == agency)
    return next(i for i in found["timeline"] if i["id"] == event_id)


def assert_withheld(item: dict[str, Any]) -> None:
    assert item["confidential"] is True and item["shown_because"] is None
    assert set(k for k, v in item.items() if v is not None) <= {
        "id", "on", "service_kind", "confidential", "summary"}
    assert item.get("summary", "Confidential") == "Confidential"


async def test_another_agencys_restricted_entries_are_confidential_through_every_read(
        world: World) -> None:
    person = world.person()
    for reader in ("housing.officer", world.agency_tokens[HOUSING], "housing.admin"):
        found = await everything(world, reader, person)
        own = entry_of(found, HOUSING, world, person)
        assert not own["confidential"] and own["agency"] == HOUSING
        for agency in (DRUGS, MENTAL_HEALTH, PRISON):   # no consent, no agreement
            item = entry_of(found, agency, world, person)
            assert_withheld(item)
            assert item["service_kind"] in ("SUBSTANCE_USE", "MENTAL_HEALTH", "PRISON")
        # what those entries say, or who recorded them, appears nowhere in any answer
        for words in ("Referral accepted", "Mental health discharge", DRUGS, MENTAL_HEALTH,
                      "substance_use", "follow-up", "Prison release"):
            assert words not in found["text"], words
        caseload = {c["service_kind"]: c for c in found["summary"]["caseload"]}
        assert caseload["SUBSTANCE_USE"]["confidential"] and caseload["MENTAL_HEALTH"][
            "confidential"]
        assert caseload["PRISON"]["agency"] == PRISON   # who works with the person is shared
        assert all(r["confidential"] for r in found["referrals"])
        # the follow-up and the care plan after the discharge; the release's alert
        assert found["expectations"] and all(e["confidential"] for e in found["expectations"])
        assert [a["confidential"] for a in found["alerts"]] == [True]
    # the agency that recorded them sees them whole
    found = await everything(world, world.agency_tokens[DRUGS], person)
    assert entry_of(found, DRUGS, world, person)["summary"].startswith("Referral accepted")


async def test_consent_opens_in_scope_its_withdrawal_and_expiry_close_on_the_next_read(
        world: World) -> None:
    person = world.person()
    async with world.as_user("drugs.worker") as drugs:
        given = await drugs.post(f"/v1/people/{person}/consents", json={
            "agencies": [HOUSING], "categories": ["SUBSTANCE_USE"], "kind": "explicit"})
        assert given.status_code == 201, given.text
        consent_id = given.json()["id"]
    found = await everything(world, "housing.officer", person)
    drugs_entry = entry_of(found, DRUGS, world, person)
    assert drugs_entry["shown_because"] == "the person's consent"
    assert_withheld(entry_of(found, MENTAL_HEALTH, world, person))  # not in its scope
    assert_withheld(entry_of(await everything(world, "probation.officer", person), DRUGS,
                             world, person))                         # nor another agency
    assert_withheld(entry_of(await everything(world, "housing.admin", person), DRUGS,
                             world, person))                         # nor business support
    async with world.as_user("drugs.worker") as drugs:
        withdrawn = await drugs.post(f"/v1/people/{person}/consents/{consent_id}/withdrawal")
        assert withdrawn.status_code == 201, withdrawn.text
        again = await drugs.post(f"/v1/people/{person}/consents/{consent_id}/withdrawal")
        assert again.status_code == 409
    assert_withheld(entry_of(await everything(world, "housing.officer", person), DRUGS, world,
                             person))

    now = datetime.now(UTC)
    async with world.as_user("drugs.worker") as drugs:
        for starts, expires in ((now - timedelta(days=30), now - timedelta(days=1)),
                                (now - timedelta(days=1), now + timedelta(seconds=2))):
            answer = await drugs.post(f"/v1/people/{person}/consents", json={
                "agencies": [HOUSING], "categories": ["SUBSTANCE_USE"], "kind": "informed",
                "starts": starts.isoformat(), "expires": expires.isoformat()})
            assert answer.status_code == 201, answer.text
    shown = entry_of(await everything(world, "housing.officer", person), DRUGS, world, person)
    assert shown["shown_because"] == "the person's consent"   # the one still running
    await asyncio.sleep(max(0.0, (now + timedelta(seconds=2.2) - datetime.now(UTC))
                            .total_seconds()))
    assert_withheld(entry_of(await everything(world, "housing.officer", person), DRUGS, world,
                             person))


async def test_consent_is_recorded_only_by_someone_working_with_the_person(world: World
                                                                           ) -> None:
    person = world.person()
    async with world.as_user("probation.officer") as probation:   # not on the caseload
        answer = await probation.post(f"/v1/people/{person}/consents", json={
            "agencies": ["probation-yh"], "categories": [], "kind": "explicit"})
    assert answer.status_code == 403, answer.text
    found = await everything(world, "probation.officer", person)
    assert_withheld(entry_of(found, DRUGS, world, person))


async def test_the_lead_professionals_grant_opens_and_its_revocation_closes(world: World
                                                                            ) -> None:
    person = world.person()
    async with world.as_user("housing.officer") as lead:
        opened = await lead.post(f"/v1/people/{person}/episodes", json={})
        assert opened.status_code == 201, opened.text
        summary = (await lead.get(f"/v1/people/{person}",
                                  params={"purpose": "care_coordination"})).json()
        assert summary["lead_professional"]["username"] == "housing.officer"
        # the lead professional sees the person's restricted entries while the episode is open
        found = await everything(world, "housing.officer", person)
        assert entry_of(found, DRUGS, world, person)["shown_because"] == (
            "the reader is the lead professional")
        second = await lead.post(f"/v1/people/{person}/episodes", json={})
        assert second.status_code == 409 and "already open" in second.text

    async with world.as_user("probation.officer") as other:   # not the lead professional
        refused = await other.post(f"/v1/people/{person}/grants",
                                   json={"practitioner": "probation.officer"})
        assert refused.status_code == 409 and "only the lead professional" in refused.text
    assert_withheld(entry_of(await everything(world, "probation.officer", person), DRUGS,
                             world, person))

    async with world.as_user("housing.officer") as lead:
        granted = await lead.post(f"/v1/people/{person}/grants",
                                  json={"practitioner": "probation.officer"})
        assert granted.status_code == 201, granted.text
        grant_id = granted.json()["id"]
    found = await everything(world, "probation.officer", person)
    assert entry_of(found, DRUGS, world, person)["shown_because"] == (
        "granted by the lead professional")
    assert entry_of(found, MENTAL_HEALTH, world, person)["confidential"] is False
    # a named grant opens nothing for a colleague in another team
    assert_withheld(entry_of(await everything(world, "probation.other", person), DRUGS, world,
                             person))

    async with world.as_user("housing.officer") as lead:
        revoked = await lead.post(f"/v1/people/{person}/grants/{grant_id}/revocation")
        assert revoked.status_code == 201, revoked.text
        team = await lead.post(f"/v1/people/{person}/grants",
                               json={"team_id": "probation-yh/ldu-bradford"})
        assert team.status_code == 201, team.text
    assert_withheld(entry_of(await everything(world, "probation.officer", person), DRUGS,
                             world, person))
    assert entry_of(await everything(world, "probation.other", person), DRUGS, world,
                    person)["shown_because"] == "granted by the lead professional"

    episode = summary["lead_professional"]["episode_id"]
    async with world.as_user("housing.officer") as lead:
        closed = await lead.post(f"/v1/people/{person}/episodes/{episode}/closure")
        assert closed.status_code == 201, closed.text
    assert_withheld(entry_of(await everything(world, "probation.other", person), DRUGS, world,
                             person))   # grants lapse with the episode


async def test_a_disclosure_shows_that_entry_to_that_agency_only(world: World) -> None:
    person = world.person()
    drugs_event = next(e for e in world.events[person] if e.source.agency == DRUGS)
    async with world.as_user("housing.officer") as housing:   # not the recording agency
        refused = await housing.post(f"/v1/people/{person}/disclosures", json={
            "entry_event_id": drugs_event.event_id, "to_agency": "probation-yh",
            "legal_basis": "safeguarding", "reason": "risk to others"})
        assert refused.status_code == 404 and "discloser's agency" in refused.text
    async with world.as_user("drugs.worker") as drugs:
        disclosed = await drugs.post(f"/v1/people/{person}/disclosures", json={
            "entry_event_id": drugs_event.event_id, "to_agency": HOUSING,
            "legal_basis": "vital_interests", "reason": "tenancy at risk"})
        assert disclosed.status_code == 201, disclosed.text
        unknown = await drugs.post(f"/v1/people/{person}/disclosures", json={
            "entry_event_id": "00000000-0000-4000-8000-000000000000", "to_agency": HOUSING,
            "legal_basis": "vital_interests", "reason": "tenancy at risk"})
        assert unknown.status_code == 404
    found = await everything(world, "housing.officer", person)
    assert entry_of(found, DRUGS, world, person)["shown_because"] == (
        "disclosed to the reader's agency")
    assert_withheld(entry_of(found, MENTAL_HEALTH, world, person))
    assert_withheld(entry_of(await everything(world, "probation.officer", person), DRUGS,
                             world, person))


async def test_a_token_reads_only_as_its_own_agency(world: World) -> None:
    person = world.person()
    probation = world.agency_tokens["probation-yh"]
    async with world.client(probation) as client:
        answer = await client.get(
            f"/v1/people/{person}/timeline",
            params={"purpose": "direct_care", "agency": DRUGS, "as": "drugs.worker"},
            headers={"X-Agency": DRUGS, "X-Forwarded-User": "drugs.worker"})
        assert answer.status_code == 200
        assert all(i["confidential"] for i in answer.json()["items"])
    for bad in ("jdr_" + "x" * 43, "jdu_" + "x" * 43, "nonsense", ""):
        async with world.client(bad) as client:
            answer = await client.get(f"/v1/people/{person}/timeline",
                                      params={"purpose": "direct_care"})
            assert answer.status_code == 401, bad
    # a signed-out token stops working
    async with world.client(None) as anonymous:
        fresh = (await anonymous.post("/v1/sign-in", json={
            "username": "probation.other", "password": "correct horse battery staple"})).json()
    async with world.client(fresh["access_token"]) as client:
        assert (await client.post("/v1/sign-out")).status_code == 204
        assert (await client.get(f"/v1/people/{person}",
                                 params={"purpose": "direct_care"})).status_code == 401


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": settings.database_url or "",
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
            "JOINEDUP_DB_SCHEMA": settings.db_schema,
            "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix, "JOINEDUP_LOG_LEVEL": "WARNING",
            "COLUMNS": "200"}


async def cli(settings: Settings, *args: str) -> tuple[int | None, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.operations.cli", *args, env=_env(settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_reads_through_the_same_filtered_path(world: World) -> None:
    person = world.person()
    nhs = world.nhs[person]
    code, out, err = await cli(world.settings, "timeline", "--identifier",
                               f"nhs_number:{nhs}", "--as", "housing.officer")
    assert code == 0, err
    assert "Confidential" in out and "Contact attended" in out
    for words in ("Referral accepted", "Mental health discharge", DRUGS, MENTAL_HEALTH):
        assert words not in out, words
    code, out, err = await cli(world.settings, "timeline", "--person", person, "--agency",
                               DRUGS)
    assert code == 0, err
    assert "Referral accepted" in out and "Mental health discharge" not in out
    code, _, err = await cli(world.settings, "timeline", "--person", person, "--as", "nobody")
    assert code == 2 and "no enabled practitioner" in err and "Traceback" not in err
