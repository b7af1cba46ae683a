"""HMPPS domain events through the real gateway (SNS endpoint, intake), broker and worker:
releases and the release rules, one transition for two reports of one release, a merge,
and what cannot be mapped parked with its reason, counted and listed."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.common.events import Identifier
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import Settings
from services.ingest.credentials import create_agency
from services.ingest.formats.hmpps.intake import hmpps_topic
from services.ingest.formats.hmpps.mapper import Mapped, map_event
from services.ingest.formats.hmpps.mapping import DEFAULT_PATH, load_mapping
from services.ingest.formats.hmpps.unmapped import unmapped_types
from services.operations.dead_letters import DeadLetters, Filter
from services.processor.bootstrap import Processor
from services.reads.domain.audit import Caller
from tests.integration.identity.helpers import person_of, settled, until
from tests.integration.processor.conftest import running  # noqa: F401  (the fixture)
from tests.sns_signing import certificate_transport, sign, sns_gateway

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hmpps"
AGENCY = "hmpps"
NO_SETTLED_ACCOMMODATION = "prison-release-no-settled-accommodation"


@dataclass
class Hmpps:
    url: str
    token: str
    settings: Settings
    processor: Processor

    @property
    def pool(self) -> asyncpg.Pool:
        return self.processor.pool

    async def deliver(self, name: str, **changes: Any) -> httpx.Response:
        """``name``'s domain event in an SNS notification, as SNS posts it (text/plain,
        basic auth, signed)."""
        envelope = json.loads((FIXTURES / "sns-notification.json").read_text())
        envelope["Message"] = json.dumps({**sample(name), **changes})
        envelope = sign(envelope)
        basic = base64.b64encode(f"hmpps:{self.token}".encode()).decode()
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            return await client.post("/v1/hmpps/sns", content=json.dumps(envelope), headers={
                "Content-Type": "text/plain; charset=UTF-8", "Authorization": f"Basic {basic}",
                "x-amz-sns-message-type": "Notification"})

    async def metrics(self) -> str:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            return (await client.get("/metrics")).text

    def event_id(self, name: str) -> str:
        result = map_event(json.dumps(sample(name)), AGENCY, load_mapping(),
                           self.settings.message_key_secret.get_secret_value().encode())
        assert isinstance(result, Mapped)
        return result.event.event_id


@contextmanager
def gateway_thread(settings: Settings) -> Iterator[str]:
    """The gateway, reaching "SNS" (the test signing certificate) in process."""
    with sns_gateway(settings, certificate_transport()) as url:
        yield url


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


@pytest.fixture
async def hmpps(running: Processor) -> AsyncIterator[Hmpps]:  # noqa: F811
    settings = running.settings
    token = await create_agency(settings, AGENCY, "HMPPS", "PRISON")
    with gateway_thread(settings) as url:
        yield Hmpps(url, token, settings, running)


async def test_releases_raise_the_release_alert_only_for_a_real_release(hmpps: Hmpps) -> None:
    for name in ("prisoner-released-released", "prisoner-released-temporary-absence"):
        answer = await hmpps.deliver(name)
        assert answer.status_code == 202, answer.text
        assert answer.json()["topic"] == hmpps_topic(hmpps.settings, AGENCY)
    await settled(hmpps.processor, 2)
    released = hmpps.event_id("prisoner-released-released")
    alert = await until(lambda: hmpps.pool.fetchrow(
        "SELECT rule_id, status FROM alert WHERE trigger_event_id = $1::uuid", released),
        what="the no-settled-accommodation alert")
    assert (alert["rule_id"], alert["status"]) == (NO_SETTLED_ACCOMMODATION, "open")
    absence = hmpps.event_id("prisoner-released-temporary-absence")
    assert await hmpps.pool.fetchval("SELECT count(*) FROM event_archive "
                                     "WHERE event_id = $1::uuid", absence) == 1
    assert await hmpps.pool.fetchval("SELECT count(*) FROM alert") == 1  # none for the absence


async def test_two_reports_of_one_release_are_one_transition(hmpps: Hmpps) -> None:
    assert (await hmpps.deliver("prisoner-released-released")).status_code == 202
    assert (await hmpps.deliver("prison-offender-events-released")).status_code == 202
    assert (await hmpps.deliver("prisoner-received")).status_code == 202
    await settled(hmpps.processor, 2)
    # the intake has taken all three once the reception (delivered last) is archived
    await until(lambda: hmpps.pool.fetchval(
        "SELECT count(*) FROM event_archive WHERE event_id = $1::uuid",
        hmpps.event_id("prisoner-received")), what="the reception archived")
    person = await person_of(hmpps.pool, Identifier("noms_number", "A7341DX"))
    kinds = [r["event_type"] for r in await hmpps.pool.fetch(
        "SELECT event_type FROM timeline_entry WHERE person_key = $1 ORDER BY occurred_at",
        person)]
    assert kinds == ["transition.occurred", "transition.occurred"]  # reception, one release
    metrics = await hmpps.metrics()
    assert 'joinedup_hmpps_events_total{agency="hmpps",outcome="repeat"} 1.0' in metrics


async def test_a_prisoner_merged_event_merges_the_two_records(hmpps: Hmpps) -> None:
    kept, removed = Identifier("noms_number", "A7341DX"), Identifier("noms_number", "B2290KE")
    assert (await hmpps.deliver("prisoner-received")).status_code == 202
    other = sample("prisoner-received")
    other["personReference"] = {"identifiers": [{"type": "NOMS", "value": removed.value}]}
    other["additionalInformation"]["nomsNumber"] = removed.value
    assert (await hmpps.deliver("prisoner-received", **other)).status_code == 202
    await settled(hmpps.processor, 2)
    assert await person_of(hmpps.pool, kept) != await person_of(hmpps.pool, removed)
    assert (await hmpps.deliver("prisoner-merged")).status_code == 202
    await settled(hmpps.processor, 3)

    async def one_person() -> str | None:
        a, b = await person_of(hmpps.pool, kept), await person_of(hmpps.pool, removed)
        return a if a == b else None

    survivor = await until(one_person, what="the two records merged")
    summaries = [r["summary"] for r in await hmpps.pool.fetch(
        "SELECT summary FROM timeline_entry WHERE person_key = $1 ORDER BY occurred_at",
        survivor)]
    assert len(summaries) == 3 and summaries[-1] == "Records merged by hmpps (noms number)"


async def test_what_cannot_be_mapped_is_parked_with_its_reason_counted_and_listed(
        hmpps: Hmpps) -> None:
    assert (await hmpps.deliver("unmapped-sentence-calculated")).status_code == 202
    assert (await hmpps.deliver("no-person")).status_code == 202
    # straight onto the topic, as an HMPPS-side bridge writes: mapped like a delivery
    await _bridge(hmpps.settings, [json.dumps(sample("community-manager-allocated")).encode(),
                                   b"{not json"])
    rows = await until(lambda: _parked(hmpps.pool, 3), what="three dead letters")
    reasons = sorted(r["reason"].split(":")[0] for r in rows)
    assert reasons == ["invalid", "no_person", "unmapped"]
    assert {r["stage"] for r in rows} == {"hmpps-intake"}
    assert {r["source_agency"] for r in rows} == {AGENCY}
    assert all("A7341DX" not in r["reason"] for r in rows)
    await until(lambda: hmpps.pool.fetchval(
        "SELECT count(*) FROM event_archive WHERE event_id = $1::uuid",
        hmpps.event_id("community-manager-allocated")), what="the bridged event archived")
    listed = await unmapped_types(hmpps.pool)
    assert [(u.event_type, u.count, u.agency) for u in listed] == [
        ("calculate-release-dates.prisoner.changed", 1, AGENCY)]
    metrics = await hmpps.metrics()
    assert ('joinedup_hmpps_unmapped_total{event_type="calculate-release-dates.prisoner.'
            'changed"} 1.0') in metrics


async def _parked(pool: asyncpg.Pool, n: int) -> list[asyncpg.Record] | None:
    rows = await pool.fetch("SELECT reason, stage, source_agency FROM dead_letter")
    return rows if len(rows) >= n else None


async def _bridge(settings: Settings, values: list[bytes]) -> None:
    topic = hmpps_topic(settings, AGENCY)
    await ensure_topics(settings, topics=(topic,))
    producer = make_producer(settings)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, v) for v in values])
    finally:
        await producer.stop()


async def test_a_type_parked_as_unmapped_is_mapped_when_redriven_after_the_mapping_learns_it(
        running: Processor, tmp_path: Path) -> None:  # noqa: F811
    settings = running.settings
    token = await create_agency(settings, AGENCY, "HMPPS", "PROBATION")
    # the packaged mapping without its last entry, the community manager allocation
    text = DEFAULT_PATH.read_text()
    last = text.rindex("[[events]]")
    assert "person.community.manager.allocated" in text[last:]
    (tmp_path / "mapping.toml").write_text(text[:last])
    older = settings.model_copy(update={"hmpps_mapping": tmp_path / "mapping.toml"})
    with gateway_thread(older) as url:
        hmpps = Hmpps(url, token, older, running)
        assert (await hmpps.deliver("community-manager-allocated")).status_code == 202
        [letter] = await until(lambda: _parked(running.pool, 1), what="the parked event")
    assert letter["reason"].startswith("unmapped: HMPPS event type person.community.manager")
    with gateway_thread(settings) as url:   # the mapping that knows the type
        letters = DeadLetters(running.pool, settings)
        [listed] = await letters.list(Caller.for_operator("ops.on.call"),
                                      Filter(source=AGENCY))
        await letters.redrive(Caller.for_operator("ops.on.call"), listed["id"],
                              "the mapping knows the type now")
        event_id = Hmpps(url, token, settings, running).event_id("community-manager-allocated")
        await until(lambda: running.pool.fetchval(
            "SELECT count(*) FROM event_archive WHERE event_id = $1::uuid", event_id),
            what="the re-driven event archived")
    assert await unmapped_types(running.pool) == []   # re-driven: no longer listed


async def test_probation_accommodation_events_close_the_referral_loop(hmpps: Hmpps) -> None:
    names = ("cas3-referral-submitted", "cas3-booking-confirmed", "cas3-person-arrived",
             "approved-premises-booking-made", "community-manager-allocated")
    for name in names:
        assert (await hmpps.deliver(name)).status_code == 202
    await settled(hmpps.processor, len(names))
    assert await hmpps.pool.fetchval("SELECT count(*) FROM dead_letter") == 0
    referral = await until(lambda: hmpps.pool.fetchrow(
        "SELECT status, to_service_kind FROM referral WHERE status = 'accepted'"),
        what="the CAS3 referral accepted")
    assert referral["to_service_kind"] == "HOUSING"
    # the booking named both numbers: the CRN's records and the NOMS number are one person
    crn = await person_of(hmpps.pool, Identifier("crn", "X318204"))
    assert crn == await person_of(hmpps.pool, Identifier("noms_number", "A7341DX"))
    kinds = {r["event_type"] for r in await hmpps.pool.fetch(
        "SELECT event_type FROM timeline_entry WHERE person_key = $1", crn)}
    assert kinds == {"referral.made", "referral.accepted", "transition.occurred"}
