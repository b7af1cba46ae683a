"""`joinedup replay --since T` on the real servers: the read models re-run in memory over the
history, counted from T (the earlier events folded for state only), the alerts raised from T
equal to what the live tables hold, from the archive and from the log, and nothing written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.common.settings import Settings
from services.identity.key_ring import KeyRing
from services.operations.replay import replay
from services.operations.what_if_cli import history_of
from services.processor.bootstrap import load_pack
from services.processor.opening import Opener
from services.processor.read_models import read_models
from services.processor.rules_stage import RuleStage
from tests import factories as f
from tests.integration.operations.test_rebuild import _env, _run
from tests.integration.operations.test_what_if import CLI, _ends, _history, _live, _rows

pytestmark = pytest.mark.integration

SINCE = f.T0 + timedelta(hours=24)


async def test_a_replay_from_a_time_counts_from_then_and_matches_the_live_alerts(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    events = _history()
    await _live(migrated, pool, events)
    rows, ends = await _rows(pool, migrated.db_schema), await _ends(migrated)
    stage = RuleStage(load_pack(migrated))
    registry = read_models(stage)
    opener = Opener(KeyRing(migrated.key_encryption_key()))
    # the live timer judged every deadline by the wall clock: so does this replay
    at = datetime.now(UTC)

    result = await replay(pool, registry, history_of(migrated, "archive", opener, 3),
                          stage.pack, SINCE, at)
    recent = [e for e in events if e.recorded_at >= SINCE]
    assert result.before.events == len(events) - len(recent)
    assert result.replayed.events == len(recent) == 6
    assert result.replayed.changes["timeline"] == len(recent)
    assert result.raised == result.raised_live and sum(result.raised.values()) > 0
    assert result.raised["mh-72h-follow-up"] == 3  # F at 72 h, H and I later
    assert all(a.at >= SINCE for a in result.replayed.alert_events)

    from_log = await replay(pool, registry, history_of(migrated, "log", opener, 3),
                            stage.pack, SINCE, at)
    assert from_log.to_json() == result.to_json()

    code, out = await _run([*CLI, "replay", "--since", SINCE.isoformat(), "--at",
                            at.isoformat(), "--json"], _env(migrated))
    assert code == 0, out
    assert json.loads(out) == result.to_json()
    code, out = await _run([*CLI, "replay", "--since", SINCE.isoformat(), "--read-models",
                            "timeline,rules"], _env(migrated))
    assert code == 0 and "nothing written" in out and "timeline" in out, out
    code, out = await _run([*CLI, "replay", "--since", SINCE.isoformat(), "--read-models",
                            "nonsense"], _env(migrated))
    assert code == 2 and "nonsense" in out and "Traceback" not in out, out

    assert await _rows(pool, migrated.db_schema) == rows
    assert await _ends(migrated) == ends
