"""FHIR Task referrals through the real gateway, broker, worker and read models."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.common.db import create_pool
from services.common.settings import Settings
from services.ingest.credentials import create_agency
from services.processor.bootstrap import build_processor
from tests.integration.ingest.conftest import gateway_thread

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fhir"
FHIR = {"Content-Type": "application/fhir+json"}
AGENCIES = {"hmp-leeds": "PRISON", "leeds-housing": "HOUSING", "probation-yh": "PROBATION",
            "forward-leeds": "SUBSTANCE_USE"}


@dataclass
class Stack:
    url: str
    pool: asyncpg.Pool
    tokens: dict[str, str]

    def client(self, agency: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[agency]}"} if agency else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def settled(self, query: str, *args: Any, expected: Any) -> None:
        """Wait until the worker has applied what was posted (it is asynchronous)."""
        value = None
        for _ in range(300):
            value = await self.pool.fetchval(query, *args)
            if value == expected:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{query!r} is {value!r}, expected {expected!r}")


@pytest.fixture
async def stack(migrated: Settings) -> AsyncIterator[Stack]:
    tokens = {a: await create_agency(migrated, a, a, kind) for a, kind in AGENCIES.items()}
    processor = await build_processor(migrated, migrate=False)
    worker = asyncio.create_task(processor.run())
    pool = await create_pool(migrated, max_size=2)
    try:
        with gateway_thread(migrated) as url:
            yield Stack(url, pool, tokens)
    finally:
        processor.stopping.set()
        await asyncio.wait_for(worker, 30)
        await processor.close()
        await pool.close()


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def task(task_id: str, status: str, minute: int, owner: str = "leeds-housing",
         requester: str = "hmp-leeds") -> dict[str, Any]:
    body = fixture("task-requested.json")
    body.update(id=task_id, status=status, lastModified=f"2026-03-02T10:{minute:02d}:00Z",
                owner={"reference": f"Organization/{owner}"},
                requester={"reference": f"Organization/{requester}"})
    return body


REFERRAL_STATUS = "SELECT status FROM referral WHERE referral_id = $1"


async def test_task_statuses_become_referral_states(stack: Stack) -> None:
    # One Task per path through the FHIR state machine: (status, who writes it, state).
    paths = {
        "t-loop": [("requested", "hmp-leeds", "requested"),
                   ("received", "leeds-housing", "received"),
                   ("accepted", "leeds-housing", "accepted"),
                   ("ready", "leeds-housing", "accepted"),
                   ("in-progress", "leeds-housing", "accepted"),
                   ("on-hold", "leeds-housing", "accepted"),
                   ("completed", "leeds-housing", "completed")],
        "t-rejected": [("requested", "hmp-leeds", "requested"),
                       ("rejected", "leeds-housing", "rejected")],
        "t-cancelled": [("requested", "hmp-leeds", "requested"),
                        ("cancelled", "hmp-leeds", "cancelled")],
        "t-failed": [("requested", "hmp-leeds", "requested"),
                     ("in-progress", "leeds-housing", "accepted"),
                     ("failed", "leeds-housing", "completed")],
        "t-error": [("requested", "hmp-leeds", "requested"),
                    ("entered-in-error", "hmp-leeds", "cancelled")],
    }
    for task_id, steps in paths.items():
        for minute, (status, writer, state) in enumerate(steps):
            async with stack.client(writer) as client:
                answer = await client.put(f"/fhir/Task/{task_id}", headers=FHIR,
                                          json=task(task_id, status, minute))
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].startswith("application/fhir+json")
            assert answer.json()["status"] == status
            await stack.settled(REFERRAL_STATUS, f"hmp-leeds/Task/{task_id}", expected=state)
            await stack.settled("SELECT status FROM fhir_task WHERE referral_id = $1",
                                f"hmp-leeds/Task/{task_id}", expected=status)
    history = await stack.pool.fetch(
        "SELECT status, set_by FROM referral_history WHERE referral_id = $1 "
        "ORDER BY occurred_at", "hmp-leeds/Task/t-loop")
    assert [(r["status"], r["set_by"]) for r in history] == [
        (state, writer) for _, writer, state in paths["t-loop"]]
    # a draft is not a referral: refused, nothing published
    async with stack.client("hmp-leeds") as client:
        draft = await client.post("/fhir/Task", headers=FHIR, json=task("t-draft", "draft", 0))
    assert draft.status_code == 422
    assert draft.json()["issue"][0]["expression"] == ["Task.status"]


async def test_a_search_answers_what_was_posted_paged_and_only_to_its_parties(
        stack: Stack) -> None:
    ids = [f"search-{n}" for n in range(5)]
    async with stack.client("hmp-leeds") as client:
        for minute, task_id in enumerate(ids):
            created = await client.post("/fhir/Task", headers=FHIR,
                                        json=task(task_id, "requested", minute))
            assert created.status_code == 201, created.text
            assert created.headers["location"].startswith(f"/fhir/Task/{task_id}/_history/")
        again = await client.post("/fhir/Task", headers=FHIR,
                                  json=task(ids[0], "requested", 0))
        assert again.status_code == 200   # the same version again: nothing new written
        changed = task(ids[0], "requested", 0)
        changed["priority"] = "urgent"
        conflict = await client.post("/fhir/Task", headers=FHIR, json=changed)
        assert conflict.status_code == 409
        assert conflict.json()["issue"][0]["expression"] == ["Task.lastModified"]
    async with stack.client("probation-yh") as client:   # somebody else's referral
        other = await client.post("/fhir/Task", headers=FHIR, json=task(
            "elsewhere", "requested", 0, owner="forward-leeds", requester="probation-yh"))
        assert other.status_code == 201, other.text
    await stack.settled("SELECT count(*) FROM fhir_task", expected=6)

    found: list[dict[str, Any]] = []
    async with stack.client("leeds-housing") as client:
        url: str | None = ("/fhir/Task?owner=Organization/leeds-housing"
                           "&_lastUpdated=gt2026-03-02T09:59:00Z&_count=2")
        pages = 0
        while url is not None:
            page = await client.get(url)
            assert page.status_code == 200, page.text
            bundle = page.json()
            assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
            assert bundle["total"] == 5
            found += [entry["resource"] for entry in bundle["entry"]]
            url = next((link["url"] for link in bundle["link"]
                        if link["relation"] == "next"), None)
            pages += 1
        assert pages == 3
        assert [t["id"] for t in found] == ids
        posted = task(ids[3], "requested", 3)
        assert {k: v for k, v in found[3].items() if k != "meta"} == posted
        later = await client.get("/fhir/Task", params={
            "owner": "Organization/leeds-housing", "_lastUpdated": "gt2026-03-02T10:02:00Z"})
        assert [e["resource"]["id"] for e in later.json()["entry"]] == ids[3:]
        assert (await client.get("/fhir/Task/elsewhere")).status_code == 404
        assert (await client.get(f"/fhir/Task/{ids[1]}")).json()["id"] == ids[1]
        # writing somebody else's Task: as if it did not exist
        hijack = await client.put("/fhir/Task/elsewhere", headers=FHIR, json=task(
            "elsewhere", "cancelled", 9, owner="leeds-housing", requester="probation-yh"))
        assert hijack.status_code == 404
    async with stack.client("forward-leeds") as client:   # owns only "elsewhere"
        theirs = (await client.get("/fhir/Task")).json()
        assert [e["resource"]["id"] for e in theirs["entry"]] == ["elsewhere"]
        none = await client.get("/fhir/Task", params={"owner": "Organization/leeds-housing"})
        assert none.json()["total"] == 0 and none.json()["entry"] == []


INVALID = [
    ("invalid-unknown-element.json", 400, "Task.contained[0].colour"),
    ("invalid-missing-status.json", 400, "Task.status"),
    ("invalid-last-modified.json", 400, "Task.lastModified"),
    ("invalid-nhs-number.json", 422, "Task.for.identifier.value"),
    ("invalid-identifier-system.json", 422, "Task.for.identifier.system"),
    ("invalid-owner.json", 422, "Task.owner.reference"),
    ("invalid-noms-number.json", 422, "Task.contained[0].identifier[1].value"),
]


async def test_an_invalid_task_answers_an_operation_outcome_with_the_element(
        migrated: Settings) -> None:
    token = await create_agency(migrated, "probation-yh", "Probation", "PROBATION")
    await create_agency(migrated, "hmp-leeds", "HMP Leeds", "PRISON")
    await create_agency(migrated, "leeds-housing", "Leeds housing", "HOUSING")
    auth = {"Authorization": f"Bearer {token}"}
    with gateway_thread(migrated) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for name, status, expression in INVALID:
                body = fixture(name)
                body["requester"] = {"reference": "Organization/probation-yh"}
                answer = await client.post("/fhir/Task", json=body, headers={**FHIR, **auth})
                assert answer.status_code == status, (name, answer.text)
                assert answer.headers["content-type"].startswith("application/fhir+json")
                outcome = answer.json()
                assert outcome["resourceType"] == "OperationOutcome"
                assert [i["expression"] for i in outcome["issue"]] == [[expression]], name
                for value in ("9434765918", "blue", "yesterday", "not-a-noms", "example.org"):
                    assert value not in answer.text
            body = fixture("task-contained-patient.json")
            wrong_type = await client.post("/fhir/Task", content=json.dumps(body),
                                           headers={"Content-Type": "text/plain", **auth})
            assert wrong_type.status_code == 415
            unauthenticated = await client.post("/fhir/Task", json=body, headers=FHIR)
            assert unauthenticated.status_code == 401
            assert unauthenticated.json()["resourceType"] == "OperationOutcome"
            for query, element in (("_lastUpdated=2026", "_lastUpdated"),
                                   ("_count=0", "_count"), ("_page=xyz", "_page")):
                bad_search = await client.get(f"/fhir/Task?{query}", headers=auth)
                assert bad_search.status_code == 400
                assert bad_search.json()["issue"][0]["expression"] == [element]
