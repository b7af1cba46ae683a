"""The rule stage's per-worker cache after a batch whose outcome is unknown.

PostgreSQL stopping during a COMMIT can carry the commit out and lose its acknowledgement;
the pipeline then rolls the stage back although the batch's effects are in PostgreSQL. The
cache must not keep the state from before that batch (seen in the fault tier: an expectation
fulfilled in such a batch later fired as if still open)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from services.common.settings import Settings
from services.processor.adapters.store import Received
from services.processor.bootstrap import load_pack
from services.processor.read_models.rules import rules
from services.processor.rules_stage import RuleStage
from tests import factories as f

H = timedelta(hours=1)


def _received(events: list, first_offset: int) -> list[Received]:
    return [Received(e, b"", "person-events", 0, first_offset + i) for i, e in enumerate(events)]


async def test_a_batch_committed_without_acknowledgement_is_read_back(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    stage = RuleStage(load_pack(migrated))
    model = rules(stage)
    discharge = f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH")
    follow_up = f.contact("follow_up", at=f.T0 + 10 * H, source="MENTAL_HEALTH")
    later = f.contact("attended", at=f.T0 + 200 * H, source="MENTAL_HEALTH")

    async with pool.acquire() as conn, conn.transaction():
        await model.apply(conn, _received([discharge], 0))
    stage.commit()
    async with pool.acquire() as conn, conn.transaction():
        await model.apply(conn, _received([follow_up], 1))
    stage.rollback()  # committed in PostgreSQL, but the pipeline saw the COMMIT fail

    async with pool.acquire() as conn, conn.transaction():
        alerts = await model.apply(conn, _received([later], 2))
    stage.commit()
    assert [a for a in alerts if a.rule_id == "mh-72h-follow-up"] == []
    status = await pool.fetchval(
        "SELECT status FROM expectation WHERE rule_id = 'mh-72h-follow-up'")
    assert status == "fulfilled"
