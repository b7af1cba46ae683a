"""`joinedup what-if` on the real servers: a history through the live processor, then the
72-hour follow-up rule's window shortened to 24 hours. The what-if reports exactly the extra
alerts (and the one whose deadline moved), counted not named, from the archive and from the
log alike; and nothing live changed: the row count of every table in the schema (the outbox
included) and every topic's end offsets are the same afterwards."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.events import AgencyEvent
from services.common.identifiers import make_nhs_number
from services.common.kafka import stop_consumer
from services.common.settings import Settings
from services.operations.dry_run import archived, what_if_report
from services.operations.what_if_cli import history_of
from services.processor.bootstrap import build_processor, load_pack
from services.processor.domain.rules import default_pack_path, load_rule_pack
from tests import factories as f
from tests.integration.operations.test_rebuild import _env, _run, _timer_done
from tests.integration.processor.conftest import publish, register_sources, wait_for

pytestmark = pytest.mark.integration

H = timedelta(hours=1)
RULE = "mh-72h-follow-up"
CLI = (sys.executable, "-m", "services.operations.cli")


def _people(n: int) -> list[str]:
    rng = random.Random(17)
    return [make_nhs_number(rng) for _ in range(n)]


def _history() -> list[AgencyEvent]:
    """Nine people discharged from a mental-health ward: A, B followed up at 12 h, C, D, E at
    48 h, F never; G's contact at 100 h moves the stream clock on; H (discharged at 90 h) is
    still within both windows then; I (at 70 h) only within 72 hours."""
    a, b, c, d, e, f_, g, h, i = _people(9)

    def discharge(nhs: str, at: timedelta) -> AgencyEvent:
        return f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH",
                            nhs=nhs, at=f.T0 + at)

    def follow_up(nhs: str, at: timedelta) -> AgencyEvent:
        return f.contact("follow_up", source="MENTAL_HEALTH", nhs=nhs, at=f.T0 + at)

    return [*(discharge(p, 0 * H) for p in (a, b, c, d, e, f_)),
            follow_up(a, 12 * H), follow_up(b, 12 * H),
            *(follow_up(p, 48 * H) for p in (c, d, e)),
            discharge(i, 70 * H), discharge(h, 90 * H),
            f.contact("attended", source="HOUSING", nhs=g, at=f.T0 + 100 * H)]


def _shortened(tmp_path: Path) -> Path:
    text = default_pack_path().read_text()
    head, rule, rest = text.partition(f'id = "{RULE}"')
    assert 'within = "72h"' in rest
    changed = tmp_path / "shortened.toml"
    changed.write_text(head + rule + rest.replace('within = "72h"', 'within = "24h"', 1))
    return changed


async def _live(settings: Settings, pool: asyncpg.Pool, events: Sequence[AgencyEvent]) -> None:
    processor = await build_processor(settings, migrate=False)
    await register_sources(pool, [(s.agency, s.service_kind) for s in f.SOURCES.values()])
    task = asyncio.create_task(processor.run())
    try:
        await publish(settings, events)
        await wait_for(pool, "SELECT count(*) FROM event_archive", len(events))
        await _timer_done(processor, settings)  # every partition caught up, deadlines fired
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()


async def _rows(pool: asyncpg.Pool, schema: str) -> dict[str, int]:
    tables = [r["table_name"] for r in await pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
        "AND table_type = 'BASE TABLE'", schema)]
    return {t: await pool.fetchval(f'SELECT count(*) FROM "{schema}"."{t}"') for t in tables}


async def _ends(settings: Settings) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(settings.topic_prefix)]
        parts = [TopicPartition(t, p) for t in topics
                 for p in consumer.partitions_for_topic(t) or ()]
        return dict(await consumer.end_offsets(parts))
    finally:
        await stop_consumer(consumer)


async def test_a_shortened_window_reports_exactly_the_extra_alerts_and_changes_nothing(
        migrated: Settings, pool: asyncpg.Pool, tmp_path: Path) -> None:
    events = _history()
    await _live(migrated, pool, events)
    assert await pool.fetchval("SELECT count(*) FROM alert") > 0  # live raised some
    rows, ends = await _rows(pool, migrated.db_schema), await _ends(migrated)
    assert "alert_outbox" in rows and "event_archive" in rows

    changed = load_rule_pack(_shortened(tmp_path))
    topic = migrated.topics.person_events
    found = await what_if_report(pool, archived(topic, None), load_pack(migrated), changed)

    assert found["events"] == len(events)
    assert found["now"] == (f.T0 + 100 * H).isoformat()  # the stream clock's end
    by_rule = {r["rule"]: r for r in found["rules"]}  # type: ignore[attr-defined]
    shortened = by_rule.pop(RULE)
    # C, D, E (followed up at 48 h) and I (due at 94 h, not 142 h) are the extra alerts;
    # F's alert is the same alert with an earlier deadline; H would be due under both.
    assert shortened == {
        "rule": RULE,
        "current": {"alerts": 1, "people": 1}, "changed": {"alerts": 5, "people": 5},
        "new": {"alerts": 4, "people": 4}, "gone": {"alerts": 0, "people": 0},
        "deadline_changed": {"alerts": 1, "people": 1},
        "severity_changed": {"alerts": 0, "people": 0},
        "would_be_due": {"current": {"alerts": 2, "people": 2},
                         "changed": {"alerts": 1, "people": 1}}}
    assert found["differs"] is True
    assert by_rule and all(r["new"]["alerts"] == r["gone"]["alerts"] == 0 and
                           r["current"] == r["changed"] for r in by_rule.values())
    # no care plan was shared: six people at 0 h and I are past 24 h, H is not
    assert by_rule["mh-care-plan-24h"]["current"] == {"alerts": 7, "people": 7}

    # from the log: the same answer (opened to ask the person index, still nothing written)
    from_log = await what_if_report(pool, history_of(migrated, "log", None, 5000),
                                    load_pack(migrated), changed)
    assert from_log == found

    # nothing live changed: every table's rows, the outbox, every topic's end
    assert await _rows(pool, migrated.db_schema) == rows
    assert await _ends(migrated) == ends


async def test_the_cli_answers_json_and_refuses_a_bad_rule_file(
        migrated: Settings, pool: asyncpg.Pool, tmp_path: Path) -> None:
    await _live(migrated, pool, _history())
    rows = await _rows(pool, migrated.db_schema)
    changed = _shortened(tmp_path)
    code, out = await _run([*CLI, "what-if", "--rules",
                            str(changed), "--rule", RULE, "--json"], _env(migrated))
    assert code == 0, out
    found = json.loads(out)
    assert [r["rule"] for r in found["rules"]] == [RULE]
    assert found["rules"][0]["new"] == {"alerts": 4, "people": 4}
    assert not any(nhs in out for nhs in _people(9))  # counted, never named
    code, out = await _run([*CLI, "what-if", "--rules",
                            str(changed)], _env(migrated))
    assert code == 0 and RULE in out and "different alerts" in out, out

    broken = tmp_path / "broken.toml"
    broken.write_text(changed.read_text().replace('within = "24h"', 'within = "24 hours"', 1))
    code, out = await _run([*CLI, "what-if", "--rules",
                            str(broken)], _env(migrated))
    assert code == 2 and "invalid" in out and RULE in out and "window" in out, out
    assert "Traceback" not in out
    assert await _rows(pool, migrated.db_schema) == rows
