"""Webhooks from the running duty service, on alerts the real processor raised: a team's
receiver gets each new alert once, signed; an alert whose every delivery failed goes to the
fallback team; a rebuild switched in sends nothing."""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console
from standardwebhooks import Webhook

from services.alerts.webhooks import endpoints
from services.operations.rebuild import Rebuild
from services.stack.ports import free_port
from tests.integration.alerts.conftest import BRADFORD, BRADFORD_OPTIONS, OUT_OF_HOURS, DutyWorld
from tests.integration.alerts.receiver import Hook, Receiver

pytestmark = pytest.mark.integration


async def received(hook: Hook, alert_id: str, count: int = 1, timeout: float = 20) -> list:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        got = [r for r in hook.received if r.data["alert_id"] == alert_id]
        if len(got) >= count:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{alert_id} reached the receiver {len(got)} times, not {count}")


async def test_a_new_alert_reaches_the_teams_receiver_once_signed_and_a_rebuild_sends_nothing(
        duty: DutyWorld, receiver: Receiver) -> None:
    hook = receiver.hook()
    async with duty.pool.acquire() as conn:
        _, secret = await endpoints.add_endpoint(
            conn, duty.settings.key_encryption_key(), BRADFORD_OPTIONS, hook.url, "test")
    alert_id = await duty.raise_alert(BRADFORD)
    [delivery] = await received(hook, alert_id)
    Webhook(secret).verify(delivery.body, delivery.headers)
    assert delivery.event["type"] == "uk.joinedup.alert.raised"
    assert delivery.data["team_name"] == "Bradford housing options"
    rebuild = Rebuild(duty.settings, names=["rules"], console=Console(quiet=True))
    await rebuild.run()
    replaced = await rebuild.switch()
    await duty.pool.execute(f'DROP SCHEMA "{replaced}" CASCADE')
    await asyncio.sleep(2.0)  # several dispatcher rounds
    assert len([r for r in hook.received if r.data["alert_id"] == alert_id]) == 1


async def test_an_alert_every_delivery_of_which_failed_goes_to_the_fallback_team(
        duty: DutyWorld) -> None:
    gone = f"http://127.0.0.1:{free_port()}/hooks/nobody-listens"
    async with duty.pool.acquire() as conn:
        for live in await conn.fetch("SELECT endpoint_id::text FROM webhook_endpoint "
                                     "WHERE team_id = $1 AND enabled", BRADFORD_OPTIONS):
            await endpoints.disable_endpoint(conn, live["endpoint_id"], duty.clock.now, "test")
        await endpoints.add_endpoint(conn, duty.settings.key_encryption_key(),
                                     BRADFORD_OPTIONS, gone, "test")
    alert_id = await duty.raise_alert(BRADFORD)
    for _ in range(200):  # the duty service's clock jumps over the retry schedule
        team = await duty.pool.fetchval("SELECT team_id FROM alert WHERE alert_id = $1::uuid",
                                        alert_id)
        if team == OUT_OF_HOURS:
            break
        duty.clock.advance(hours=1)
        await asyncio.sleep(0.1)
    assert team == OUT_OF_HOURS
    detail = await duty.pool.fetchval(
        "SELECT detail FROM alert_history WHERE alert_id = $1::uuid AND action = 'escalated'",
        alert_id)
    assert detail == "every delivery failed"
    dead = await duty.pool.fetchval(
        "SELECT count(*) FROM webhook_delivery d JOIN webhook_endpoint e USING (endpoint_id) "
        "WHERE e.url = $1 AND d.status = 'dead'", gone)
    assert dead >= 1
