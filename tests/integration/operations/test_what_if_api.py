"""`POST /v1/operations/what-if` through the real read API: the same answer as the CLI's
`--json`, for operations staff only, a bad rule file and too much history refused with the
reason, every call recorded in the access audit (action ``what_if``)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
import pytest

from services.common.settings import Settings
from services.operations.dry_run import archived, what_if_report
from services.processor.bootstrap import load_pack
from services.processor.domain.rules import load_rule_pack
from services.reads import accounts
from tests.integration.operations.test_what_if import RULE, _history, _live, _shortened
from tests.integration.reads.conftest import read_api_thread

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


async def _sign_in(url: str, username: str) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=url, timeout=30) as anonymous:
        answer = await anonymous.post("/v1/sign-in", json={"username": username,
                                                           "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    return httpx.AsyncClient(base_url=url, timeout=60,
                             headers={"Authorization": f"Bearer {token}"})


async def test_the_api_answers_as_the_cli_for_operations_staff_only_and_is_audited(
        migrated: Settings, pool: asyncpg.Pool, tmp_path: Path) -> None:
    await _live(migrated, pool, _history())
    async with pool.acquire() as conn:
        team = await accounts.create_team(conn, "leeds-housing", "ops", "operations")
        for username, role in (("ops.engineer", "operations"), ("housing.officer",
                                                                 "practitioner")):
            await accounts.create_practitioner(conn, username, "leeds-housing", team, role,
                                               PASSWORD)
    changed = _shortened(tmp_path).read_text()
    expected = await what_if_report(pool, archived(migrated.topics.person_events, None),
                                    load_pack(migrated), load_rule_pack(changed), rule=RULE)

    with read_api_thread(migrated) as url:
        async with await _sign_in(url, "ops.engineer") as ops, \
                await _sign_in(url, "housing.officer") as practitioner:
            answer = await ops.post("/v1/operations/what-if",
                                    json={"rules": changed, "rule": RULE})
            assert answer.status_code == 200, answer.text
            assert answer.json() == expected
            assert answer.json()["rules"][0]["new"] == {"alerts": 4, "people": 4}

            refused = await practitioner.post("/v1/operations/what-if",
                                              json={"rules": changed})
            assert refused.status_code == 403

            broken = changed.replace('within = "24h"', 'within = "a day"', 1)
            invalid = await ops.post("/v1/operations/what-if", json={"rules": broken})
            assert invalid.status_code == 422
            assert RULE in invalid.text and "window" in invalid.text, invalid.text
            path = await ops.post("/v1/operations/what-if", json={"rules": "/etc/passwd"})
            assert path.status_code == 422 and "not a rule file" in path.text

    bounded = migrated.model_copy(update={"what_if_api_max_events": 5})
    with read_api_thread(bounded) as url:
        async with await _sign_in(url, "ops.engineer") as ops:
            too_much = await ops.post("/v1/operations/what-if", json={"rules": changed})
            assert too_much.status_code == 422
            assert "joinedup what-if" in too_much.text, too_much.text

    audited = [(r["action"], r["outcome"], r["role"]) for r in await pool.fetch(
        "SELECT action, outcome, role FROM access_audit WHERE action = 'what_if' ORDER BY seq")]
    assert audited == [("what_if", "ok", "operations")] + [
        ("what_if", "refused", "operations")] * 3
