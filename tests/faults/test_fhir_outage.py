"""PostgreSQL stopped and started again while FHIR Tasks are posted (``POST /fhir/Task``) and
updated (``PUT /fhir/Task/{id}``).

The gateway reads the database for the credential, the Task's parties and the agencies'
kinds, and claims each version's id in its receipts before producing; the ``fhir_task`` read
model is folded from the log by the processor. So PostgreSQL is the server to stop. Every
answer must be 201/200 for a version that is on the agency's log once, or 503 with
Retry-After as a FHIR OperationOutcome (FHIR clients read no problem+json); once the
database is back, the clients' retries are written once each, and the processor (which
waited the outage out) has a ``fhir_task`` row for every Task at its latest status.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest

from services.common.db import wait_and_migrate
from services.common.kafka import ensure_topics
from services.ingest.credentials import create_agency
from services.stack.postgres import EmbeddedPostgres
from tests.conftest import Servers, make_settings
from tests.faults.conftest import FAST_RETRY, start_in_process, wait_until
from tests.integration.ingest.conftest import copies, gateway_thread, topic_events
from tests.integration.ingest.test_fhir_tasks import FHIR, task

pytestmark = pytest.mark.faults

CLIENTS = 6
REQUESTER, OWNER = "hmp-leeds", "leeds-housing"
#: each Task's versions, in order: (status, writer, method)
STEPS = (("requested", REQUESTER, "POST"), ("received", OWNER, "PUT"))


@dataclass
class Written:
    """What the clients were answered, and what each Task still has to write."""

    answers: list[httpx.Response] = field(default_factory=list)
    versions: dict[tuple[str, int], str] = field(default_factory=dict)  # -> versionId
    unfinished: dict[str, int] = field(default_factory=dict)  # Task id -> next step

    def accepted(self) -> int:
        return sum(1 for a in self.answers if a.status_code in (200, 201))


async def _write(clients: dict[str, httpx.AsyncClient], task_id: str, step: int,
                 written: Written) -> httpx.Response:
    status, writer, method = STEPS[step]
    body = task(task_id, status, step, owner=OWNER, requester=REQUESTER)
    if method == "POST":
        answer = await clients[writer].post("/fhir/Task", headers=FHIR, json=body)
    else:
        answer = await clients[writer].put(f"/fhir/Task/{task_id}", headers=FHIR, json=body)
    written.answers.append(answer)
    if answer.status_code in (200, 201):
        written.versions[(task_id, step)] = answer.json()["meta"]["versionId"]
    return answer


async def _post_until(clients: dict[str, httpx.AsyncClient], number: int, stop: asyncio.Event,
                      warm: asyncio.Event, written: Written) -> None:
    n = 0
    while not stop.is_set():
        task_id, n = f"t-{number}-{n}", n + 1
        written.unfinished[task_id] = 0
        for step in range(len(STEPS)):
            if (await _write(clients, task_id, step, written)).status_code not in (200, 201):
                await asyncio.sleep(0.05)  # a client backs off a little after a 503
                break  # and retries this Task later, from this step
            written.unfinished[task_id] = step + 1
        if written.accepted() >= 10 * CLIENTS:
            warm.set()


async def test_database_outage_under_fhir_tasks_answers_written_or_an_operation_outcome(
        servers: Servers, own_postgres: EmbeddedPostgres) -> None:
    settings = make_settings(servers, database_url=own_postgres.url,
                             api_credential_cache_seconds=0.0,  # every post reads the database
                             api_produce_timeout_seconds=2.0,  # claims cut short: stale in 9 s
                             **FAST_RETRY)
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    tokens = {REQUESTER: await create_agency(settings, REQUESTER, "HMP Leeds", "PRISON"),
              OWNER: await create_agency(settings, OWNER, "Leeds housing", "HOUSING")}
    running = await start_in_process(settings, rules=False)
    written = Written()
    stop, warm = asyncio.Event(), asyncio.Event()
    try:
        with gateway_thread(settings) as url:
            clients = {agency: httpx.AsyncClient(base_url=url, timeout=30, headers={
                "Authorization": f"Bearer {token}"}) for agency, token in tokens.items()}
            try:
                posting = [asyncio.create_task(_post_until(clients, i, stop, warm, written))
                           for i in range(CLIENTS)]
                await asyncio.wait_for(warm.wait(), 30)
                await asyncio.to_thread(own_postgres.stop)
                await asyncio.sleep(1.0)  # Tasks keep arriving at a gateway with no database
                stop.set()
                await asyncio.gather(*posting)
                during = len(written.answers)
                await asyncio.to_thread(own_postgres.start)

                # The clients retry what was answered 503, each Task's steps in order.
                async def retried() -> bool:
                    for task_id, step in list(written.unfinished.items()):
                        while step < len(STEPS):
                            if (await _write(clients, task_id, step, written)
                                    ).status_code not in (200, 201):
                                return False
                            step = written.unfinished[task_id] = step + 1
                    return True
                await wait_until(retried, 45, 0.5)
            finally:
                for client in clients.values():
                    await client.aclose()
        assert not running.task.done(), "the processor stopped during the outage"
        pool = await asyncpg.create_pool(own_postgres.url, min_size=1, max_size=2,
                                         server_settings={"search_path": settings.db_schema})
        try:
            async def folded() -> bool:
                return await pool.fetchval("SELECT count(*) FROM fhir_task WHERE status = $1",
                                           STEPS[-1][0]) >= len(written.unfinished)
            await wait_until(folded, 45)
            rows = await pool.fetch("SELECT task_id, status, version_id::text FROM fhir_task")
        finally:
            await pool.close()
    finally:
        await running.stop()
    found = await topic_events(settings, agencies=[REQUESTER, OWNER])

    statuses = {a.status_code for a in written.answers[:during]}
    assert statuses <= {200, 201, 503}, sorted(statuses)
    assert 503 in statuses  # the outage was seen
    # After the outage a retry may meet the claim of a write the outage cut short: 409
    # "being written now" with Retry-After, until that claim is stale.
    assert {a.status_code for a in written.answers[during:]} <= {200, 201, 409, 503}
    for answer in written.answers:
        assert answer.headers["content-type"].startswith("application/fhir+json"), answer.text
        resource = answer.json()
        if answer.status_code in (200, 201):
            assert resource["resourceType"] == "Task", resource
        else:
            assert resource["resourceType"] == "OperationOutcome", resource
            assert answer.headers.get("retry-after", "").isdigit(), answer.headers
            assert "9434765919" not in answer.text  # no personal data in the error
    # every version written once: none missing, none doubled, nothing else on the log
    assert len(written.versions) == len(STEPS) * len(written.unfinished)
    assert all(copies(found, version) == 1 for version in written.versions.values())
    assert len(found) == len(written.versions)
    # the read model holds every Task, at the version written last
    assert {(r["task_id"], r["status"], r["version_id"]) for r in rows} == {
        (task_id, STEPS[-1][0], written.versions[(task_id, len(STEPS) - 1)])
        for task_id in written.unfinished}
    refused = sum(1 for a in written.answers[:during] if a.status_code == 503)
    print(f"\n[figures] FHIR Tasks, PostgreSQL stopped under {CLIENTS} clients: {during} "
          f"writes, {during - refused} answered 200/201 (each on the log once), {refused} "
          f"answered 503 as an OperationOutcome; {len(written.unfinished)} Tasks, "
          f"{len(written.versions)} versions on the log once each, all in fhir_task")
