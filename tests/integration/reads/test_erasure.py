"""Erasure in an append-only log, on the real servers: events posted through the gateway for
two people, a disclosure with its reason; `joinedup erase` one of them; then a scan of every
PostgreSQL table and every topic finds none of the erased person's identifiers (nor the free
text) in the clear, the other person is untouched, the erased person's entries read
"Erased", a later event under the same identifier is somebody new, and a rebuild from the
archive succeeds and equals the live read models."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console

from services.common.db import create_pool, wait_and_migrate
from services.common.events import AgencyEvent, Identifier
from services.common.kafka import ensure_topics, stop_consumer
from services.common.settings import Settings
from services.ingest.client import JoinedupClient
from services.ingest.credentials import create_agency
from services.operations.rebuild import Rebuild
from services.processor.bootstrap import build_processor
from services.reads import accounts
from services.reads.domain.audit import Caller
from services.reads.domain.governance import EntryDisclosed
from services.reads.service import person_reads
from tests import factories as f
from tests.conftest import Servers, make_settings
from tests.integration.ingest.conftest import gateway_thread
from tests.integration.operations.test_rebuild import _timer_done
from tests.integration.processor.conftest import wait_for
from tests.integration.reads.conftest import history, nhs_numbers
from tests.integration.reads.test_visibility_everywhere import cli

pytestmark = pytest.mark.integration

REASON = "tenancy at risk after eviction notice"


async def post(url: str, tokens: dict[str, str], events: list[AgencyEvent]) -> None:
    """Each event through the gateway, as its agency."""
    for agency in {e.source.agency for e in events}:
        mine = [e for e in events if e.source.agency == agency]
        async with JoinedupClient(url, tokens[agency], attempts=20, backoff=0.2) as client:
            assert all(r.written for r in await client.publish_batch(mine))


async def found_in_tables(pool: asyncpg.Pool, schema: str, needles: list[str]
                          ) -> dict[str, int]:
    """Rows of every table of the schema whose text (bytea as hex) holds any needle."""
    forms = [n for text in needles for n in (text, text.encode().hex())]
    tables = [r["table_name"] for r in await pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
        "AND table_type = 'BASE TABLE'", schema)]
    hits = {}
    for table in tables:
        count = await pool.fetchval(
            f'SELECT count(*) FROM "{schema}"."{table}" AS t '
            "WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) AS n WHERE strpos(t::text, n) > 0)",
            forms)
        if count:
            hits[table] = count
    return hits


async def found_in_topics(settings: Settings, needles: list[str]) -> dict[str, int]:
    """Records of every topic of the deployment whose key, value or headers hold a needle."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics()
                  if t.startswith(settings.topic_prefix + ".")]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_bootstrap,
                                group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    hits: dict[str, int] = {}
    raw = [n.encode() for n in needles]
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for records in batch.values():
                for r in records:
                    blob = b"".join([r.key or b"", r.value or b"",
                                     *(v for _, v in r.headers or ())])
                    if any(n in blob for n in raw):
                        hits[r.topic] = hits.get(r.topic, 0) + 1
    finally:
        await stop_consumer(consumer)
    return hits


async def test_erasure_leaves_nothing_readable_and_everyone_else_working(
        servers: Servers) -> None:
    # The wall clock: the follow-ups of these discharges (months ago) fire at once, as the
    # rebuild's closing deadline sweep fires them, so live and rebuilt rules compare.
    settings = make_settings(servers)
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    tokens = {s.agency: await create_agency(settings, s.agency, s.agency, s.service_kind)
              for s in f.SOURCES.values()}
    erased_nhs, kept_nhs, _ = nhs_numbers(3)
    local = Identifier("local_id", "RIO-77123")   # the mental-health trust's own id
    erased_history = [dataclasses.replace(e, identifiers=(*e.identifiers, local))
                      if e.source.agency == "mh-trust-leeds" else e
                      for e in history(erased_nhs)]
    events = erased_history + history(kept_nhs)
    processor = await build_processor(settings, migrate=False)
    task = asyncio.create_task(processor.run())
    pool = await create_pool(settings, max_size=3)
    try:
        with gateway_thread(settings) as url:
            await post(url, tokens, events)
            await wait_for(pool, "SELECT count(*) FROM timeline_entry", 8)
            await _timer_done(processor, settings)   # the follow-ups' deadlines fire
            person = await pool.fetchval(
                "SELECT person_id::text FROM person_index_identifier WHERE value = $1",
                erased_nhs)
            drugs_event = next(e for e in erased_history if e.source.agency == "forward-leeds")
            async with pool.acquire() as conn:
                worker = await accounts.create_practitioner(
                    conn, "drugs.erasure", "forward-leeds", None, "practitioner",
                    "correct horse battery staple")
            reads = person_reads(pool, settings)
            await reads.record(Caller(worker.reader, "practitioner"), person, EntryDisclosed(
                "d-1", "forward-leeds", drugs_event.event_id, "leeds-housing",
                "safeguarding", REASON))
            needles = [erased_nhs, local.value, REASON]
            # before: the clear values exist where they are meant to (the index, sightings)
            assert "person_index_identifier" in await found_in_tables(
                pool, settings.db_schema, needles)
            assert not await found_in_topics(settings, needles)  # sealed on every topic

            code, out, err = await cli(settings, "erase", "--identifier",
                                       f"nhs_number:{erased_nhs}", "--by", "IG officer (test)",
                                       "--reason", "subject's request SAR-2026-117")
            assert code == 0, err
            assert "2 identifier(s) forgotten" in out and "4 timeline entries" in out

            assert await found_in_tables(pool, settings.db_schema, needles) == {}
            assert await found_in_topics(settings, needles) == {}
            # the other person is untouched
            kept = await pool.fetchval(
                "SELECT person_id::text FROM person_index_identifier WHERE value = $1", kept_nhs)
            assert kept is not None and kept != person
            assert await pool.fetchval(
                "SELECT count(*) FROM timeline_entry WHERE person_key = $1 "
                "AND summary <> 'Erased'", kept) == 4
            assert [r[0] for r in await pool.fetch(
                "SELECT summary FROM timeline_entry WHERE person_key = $1", person)] == [
                "Erased"] * 4
            assert await pool.fetchval(
                "SELECT count(*) FROM access_audit WHERE action = 'erase' "
                "AND operator = 'IG officer (test)' AND person_id = $1::uuid", person) == 1
            # the recording agency reads the entries as erased; the governance record too
            summary = (await reads.timeline(Caller(worker.reader, "practitioner"), person,
                                            "direct_care")).items
            assert [s.fields.get("summary") for s in summary if not s.confidential] == [
                "Erased"]
            record = await reads.summary(Caller(worker.reader, "practitioner"), person,
                                         "direct_care")
            assert record.governance["disclosures"][0]["reason"] == "erased"

            # a later event under the same NHS number is somebody new
            later = dataclasses.replace(
                f.contact("attended", contact_id="c-after", source="HOUSING",
                          at=f.T0 + timedelta(days=30), nhs=erased_nhs))
            await post(url, tokens, [later])
            await wait_for(pool, "SELECT count(*) FROM timeline_entry", 9)
            await _timer_done(processor, settings)
            newcomer = await pool.fetchval(
                "SELECT person_id::text FROM person_index_identifier WHERE value = $1",
                erased_nhs)
            assert newcomer is not None and newcomer != person
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()
        await pool.close()

    # a rebuild from the archive opens the erased person's events as erased: equal to live
    rebuild = Rebuild(settings, console=Console(quiet=True), workers=1)
    await rebuild.run()
    differences = [d for d in await rebuild.check() if d.only_live or d.only_shadow]
    assert differences == [], differences
    await rebuild.drop()
