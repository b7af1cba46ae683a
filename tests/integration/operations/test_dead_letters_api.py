"""`/v1/operations/dead-letters` through the read API (httpx over ASGI, the real database and
broker): operations staff list, show, re-drive and purge; anyone else is refused; each call
audited with the signed-in practitioner."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.common.agencies import register_agency
from services.common.events import Source
from services.common.settings import Settings
from services.processor.bootstrap import Processor
from services.reads import accounts
from services.reads.entrypoints.http import create_app
from tests import factories as f
from tests.integration.processor.conftest import (  # noqa: F401 - running is a fixture
    publish,
    running,
    wait_for,
)

PASSWORD = "correct horse battery staple"
AGENCY = f.SOURCES["HOUSING"].agency


@pytest.fixture
async def api(migrated: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    await register_agency(pool, AGENCY, AGENCY, "HOUSING")
    async with pool.acquire() as conn:
        for username, role in (("ops.one", "operations"), ("housing.one", "practitioner")):
            await accounts.create_practitioner(conn, username, AGENCY, None, role, PASSWORD)
    app = create_app(migrated, migrate=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def sign_in(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    answer = await client.post("/v1/sign-in", json={"username": username,
                                                    "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def park_one(settings: Settings, running: Processor) -> None:  # noqa: F811
    unregistered = dataclasses.replace(f.contact("attended"),
                                       source=Source("nobody-yet", "VOLUNTARY", "crm"))
    await publish(settings, [unregistered])
    await wait_for(running.pool, "SELECT count(*) FROM dead_letter", 1)


async def test_operations_staff_list_show_redrive_and_purge(api: httpx.AsyncClient,
                                                    running: Processor) -> None:  # noqa: F811
    await park_one(running.settings, running)
    ops = await sign_in(api, "ops.one")

    listed = await api.get("/v1/operations/dead-letters",
                           params={"source": "nobody-yet", "stage": "admission"}, headers=ops)
    assert listed.status_code == 200, listed.text
    [letter] = listed.json()
    assert letter["reason"].startswith("refused: the agency is not registered")
    assert letter["status"] == "open" and letter["copy_offset"] is not None

    shown = await api.get(f"/v1/operations/dead-letters/{letter['id']}", headers=ops)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["content"]["form"] == "avro"
    assert body["content"]["decoded"]["source"]["agency"] == "nobody-yet"
    assert {"name": "ce_type", "value": "contact.attended"} in body["headers"]
    assert any(h["name"] == "__connect.errors.exception.message" for h in body["error_headers"])

    # Re-driven with the agency still unregistered: parked again, linked to the first.
    redriven = await api.post(f"/v1/operations/dead-letters/{letter['id']}/redrive",
                              json={"reason": "agency says it is registered"}, headers=ops)
    assert redriven.status_code == 200, redriven.text
    assert redriven.json()["status"] == "redriven"
    assert redriven.json()["redriven_by"].startswith("practitioner:")
    await wait_for(running.pool, "SELECT count(*) FROM dead_letter", 2)
    twice = await api.post(f"/v1/operations/dead-letters/{letter['id']}/redrive",
                           json={"reason": "again"}, headers=ops)
    assert twice.status_code == 409
    [parked_again] = (await api.get("/v1/operations/dead-letters", headers=ops)).json()
    assert parked_again["redrive_of"] == letter["id"]

    purged = await api.post(f"/v1/operations/dead-letters/{parked_again['id']}/purge",
                            json={"reason": "agency not joining"}, headers=ops)
    assert purged.status_code == 200, purged.text
    assert purged.json()["status"] == "purged"
    assert purged.json()["purged_by"].startswith("practitioner:")
    again = await api.post(f"/v1/operations/dead-letters/{parked_again['id']}/purge",
                           json={"reason": "twice"}, headers=ops)
    assert again.status_code == 409
    missing = await api.get("/v1/operations/dead-letters/999999", headers=ops)
    assert missing.status_code == 404

    actions = await running.pool.fetch(
        "SELECT action, outcome, reader_kind, role FROM access_audit "
        "WHERE action LIKE 'dead_letter.%' ORDER BY seq")
    assert [(r["action"], r["outcome"]) for r in actions] == [
        ("dead_letter.list", "ok"), ("dead_letter.show", "ok"), ("dead_letter.redrive", "ok"),
        ("dead_letter.redrive", "refused"), ("dead_letter.list", "ok"),
        ("dead_letter.purge", "ok"), ("dead_letter.purge", "refused"),
        ("dead_letter.show", "not_found")]
    assert {(r["reader_kind"], r["role"]) for r in actions} == {("practitioner", "operations")}


async def test_only_operations_staff(api: httpx.AsyncClient) -> None:
    other = await sign_in(api, "housing.one")
    assert (await api.get("/v1/operations/dead-letters", headers=other)).status_code == 403
    assert (await api.post("/v1/operations/dead-letters/1/purge", json={"reason": "x"},
                           headers=other)).status_code == 403
    assert (await api.get("/v1/operations/dead-letters")).status_code == 401
