"""Webhooks against a real receiver (Starlette under uvicorn, on a free port) and the
session's PostgreSQL: signatures the published Standard Webhooks library accepts (two during
a rotation), retries on the schedule, 410, 429 with Retry-After, the dead letter and the
hand-over of an alert nobody received, the signal-only body, and the feed's xid rule.

Teams, alerts and team feed rows are written here with SQL, as live processing writes them;
an injected clock jumps across the retry schedule, so nothing waits for a backoff.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from services.alerts.webhooks import endpoints, signing
from services.alerts.webhooks.cli import register_commands
from services.alerts.webhooks.dispatcher import WebhookDispatcher
from services.alerts.webhooks.payload import SIGNAL_FIELDS
from services.common.settings import Settings
from services.stack.ports import free_port
from tests.integration.alerts.conftest import HandClock
from tests.integration.alerts.receiver import Hook, Received, Receiver

pytestmark = pytest.mark.integration

AGENCY = "leeds-housing"
TEAM = "leeds-housing/options"
PERSON = "3f2b8a64-0c1d-4e5f-9a7b-6c5d4e3f2a10"


# --- the world: a team, its alerts and feed, a dispatcher on a test clock --------------------

@dataclass
class World:
    settings: Settings
    pool: asyncpg.Pool
    clock: HandClock
    client: httpx.AsyncClient
    handed_over: list[tuple[str, str]] = field(default_factory=list)

    def dispatcher(self, **overrides: object) -> WebhookDispatcher:
        async def hand_over(alert_id: str, team_id: str) -> None:
            self.handed_over.append((alert_id, team_id))
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return WebhookDispatcher(self.pool, settings, self.client, self.clock, hand_over,
                                 jitter=lambda: 0.5)

    async def step(self, dispatcher: WebhookDispatcher) -> int:
        return await dispatcher.step(self.clock())

    async def endpoint(self, url: str, **options: object) -> tuple[str, str]:
        async with self.pool.acquire() as conn:
            return await endpoints.add_endpoint(conn, self.settings.key_encryption_key(), TEAM,
                                                url, "duty.manager",
                                                **options)  # type: ignore[arg-type]

    async def alert(self) -> str:
        alert_id = str(uuid.uuid4())
        await self.pool.execute(
            "INSERT INTO alert (alert_id, person_key, rule_id, rule_version, severity, "
            " duty_team, title, explanation, source_reference, trigger_event_id, expected, "
            " window_start, status, raised_at, team_id) "
            "VALUES ($1::uuid, $2, 'prison-release-no-settled-accommodation', '1', 'critical', "
            " 'housing:E08000035', 'Released with nowhere to live', 'No housing referral "
            " was found before release.', 'Homelessness Reduction Act 2017, s213B', $3::uuid, "
            " 'a housing referral', now(), 'open', now(), $4)",
            alert_id, PERSON, str(uuid.uuid4()), TEAM)
        return alert_id

    async def feed(self, alert_id: str, action: str = "raised", version: int = 1,
                   conn: asyncpg.Connection | None = None) -> str:
        """What live processing writes when an alert event reaches the team."""
        event_id = str(uuid.uuid4())
        await (conn or self.pool).execute(
            "INSERT INTO team_feed (team_id, alert_id, alert_event_id, action, version) "
            "VALUES ($1, $2::uuid, $3::uuid, $4, $5)", TEAM, alert_id, event_id, action, version)
        return event_id

    async def deliveries(self, url_hook: Hook | None = None) -> list[asyncpg.Record]:
        return list(await self.pool.fetch(
            "SELECT d.*, d.alert_id::text AS alert FROM webhook_delivery d "
            "JOIN webhook_endpoint e USING (endpoint_id) "
            "WHERE $1::text IS NULL OR e.url = $1 ORDER BY d.recorded_at",
            url_hook.url if url_hook else None))

    async def attempts(self, delivery_id: uuid.UUID) -> list[asyncpg.Record]:
        return list(await self.pool.fetch(
            "SELECT * FROM webhook_attempt WHERE delivery_id = $1 ORDER BY attempt",
            delivery_id))


@pytest.fixture
async def world(pool: asyncpg.Pool, migrated: Settings) -> AsyncIterator[World]:
    await pool.execute("INSERT INTO agency (agency_id, name, service_kind) "
                       "VALUES ($1, 'Leeds housing', 'HOUSING')", AGENCY)
    await pool.execute("INSERT INTO team (team_id, agency_id, name) "
                       "VALUES ($1, $2, 'Leeds housing options')", TEAM, AGENCY)
    settings = migrated.model_copy(update={"duty_public_url": "https://duty.example.org",
                                           "webhook_timeout_seconds": 5.0})
    async with httpx.AsyncClient() as client:
        yield World(settings, pool, HandClock(), client)


def verified_by(secret: str, received: Received) -> bool:
    try:
        Webhook(secret).verify(received.body, received.headers)
    except WebhookVerificationError:
        return False
    return True


# --- the tests -------------------------------------------------------------------------------

async def test_signatures_verify_with_the_published_library_also_during_rotation(
        world: World, receiver: Receiver) -> None:
    hook = receiver.hook()
    endpoint_id, old = await world.endpoint(hook.url)
    dispatcher = world.dispatcher()
    alert_id = await world.alert()
    raised = await world.feed(alert_id)
    assert await world.step(dispatcher) == 1
    [first] = hook.received
    assert verified_by(old, first)
    assert first.headers["content-type"].startswith("application/cloudevents+json")
    assert first.headers["webhook-id"] == str((await world.deliveries(hook))[0]["delivery_id"])
    assert (first.event["id"], first.event["type"], first.event["subject"]) == (
        raised, "uk.joinedup.alert.raised", alert_id)
    assert first.data["person_id"] == PERSON
    assert first.data["team_name"] == "Leeds housing options"
    assert first.data["link"] == f"https://duty.example.org/alerts/{alert_id}"

    async with world.pool.acquire() as conn:
        new = await endpoints.rotate_secret(conn, world.settings.key_encryption_key(),
                                            endpoint_id, timedelta(hours=24), "duty.manager")
    await world.feed(alert_id, "escalated", 2)
    assert await world.step(dispatcher) == 1
    during = hook.received[1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verified_by(old, during) and verified_by(new, during)

    world.clock.advance(hours=25)       # the old secret has expired: the new one alone signs
    await world.feed(alert_id, "resolved", 3)
    assert await world.step(dispatcher) == 1
    after = hook.received[2]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    now = int(world.clock().timestamp())
    signing.verify(after.body, after.headers, new, now)
    with pytest.raises(signing.SignatureError):
        signing.verify(after.body, after.headers, old, now)


async def test_a_receiver_that_fails_twice_gets_the_alert_on_the_third_attempt(
        world: World, receiver: Receiver) -> None:
    hook = receiver.hook(500, 502)
    _, secret = await world.endpoint(hook.url)
    dispatcher = world.dispatcher()
    await world.feed(await world.alert())
    assert await world.step(dispatcher) == 1          # 500
    world.clock.advance(seconds=3)
    assert await world.step(dispatcher) == 0          # not due before 5 s
    world.clock.advance(seconds=3)
    assert await world.step(dispatcher) == 1          # 502
    world.clock.advance(seconds=31)
    assert await world.step(dispatcher) == 1          # 204
    world.clock.advance(days=4)
    assert await world.step(dispatcher) == 0

    assert len(hook.received) == 3
    assert len({r.headers["webhook-id"] for r in hook.received}) == 1
    assert len({r.headers["webhook-timestamp"] for r in hook.received}) == 3
    assert verified_by(secret, hook.received[-1])
    [delivery] = await world.deliveries(hook)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
    attempts = await world.attempts(delivery["delivery_id"])
    assert [(a["attempt"], a["status_code"], a["failure"]) for a in attempts] == [
        (1, 500, None), (2, 502, None), (3, 204, None)]
    assert all(a["duration_ms"] >= 0 for a in attempts)
    assert world.handed_over == []


async def test_410_disables_the_endpoint_and_stops_its_deliveries(
        world: World, receiver: Receiver) -> None:
    hook = receiver.hook(always=410)
    endpoint_id, _ = await world.endpoint(hook.url)
    dispatcher = world.dispatcher(webhook_concurrency=1)
    first, second = await world.alert(), await world.alert()
    await world.feed(first)
    await world.feed(second)
    assert await world.step(dispatcher) == 1
    endpoint = await world.pool.fetchrow(
        "SELECT enabled, disabled_reason FROM webhook_endpoint WHERE endpoint_id = $1::uuid",
        endpoint_id)
    assert (endpoint["enabled"], endpoint["disabled_reason"]) == (False, "410 Gone")
    assert await world.pool.fetchval(
        "SELECT changed_by FROM duty_change WHERE action = 'webhook-disabled'"
    ) == "webhook dispatcher"
    assert [d["status"] for d in await world.deliveries(hook)] == ["cancelled", "cancelled"]

    await world.feed(await world.alert())
    for _ in range(3):
        world.clock.advance(days=1)
        assert await world.step(dispatcher) == 0
    assert len(hook.received) == 1
    assert len(await world.deliveries(hook)) == 2
    # the team has no other endpoint: both raised alerts go to the fallback, once each
    assert sorted(world.handed_over) == sorted([(first, TEAM), (second, TEAM)])


async def test_a_dead_receiver_ends_in_the_dead_letter_and_the_alert_is_handed_over(
        world: World) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/hooks/gone-away"
    await world.endpoint(nobody)
    dispatcher = world.dispatcher()
    alert_id = await world.alert()
    await world.feed(alert_id)
    await world.feed(alert_id, "resolved", 2)          # dies too, but is nobody's to take over
    for attempt in range(1, 14):
        assert await world.step(dispatcher) == 2
        statuses = {d["status"] for d in await world.deliveries()}
        assert statuses == ({"dead"} if attempt == 13 else {"pending"})
        assert world.handed_over == ([(alert_id, TEAM)] if attempt == 13 else [])
        world.clock.advance(days=2)
    assert await world.step(dispatcher) == 0
    assert world.handed_over == [(alert_id, TEAM)]     # once

    raised = (await world.deliveries())[0]
    assert raised["reason"] == "13 attempts, the last: connect"
    assert (raised["handed_over"], raised["attempts"]) == (True, 13)
    attempts = await world.attempts(raised["delivery_id"])
    assert [a["failure"] for a in attempts] == ["connect"] * 13
    assert all(a["status_code"] is None for a in attempts)

    async with world.pool.acquire() as conn:              # redriven: the schedule again
        await endpoints.redrive(conn, str(raised["delivery_id"]), world.clock(), "ops")
    assert await world.step(dispatcher) == 1
    again = await world.pool.fetchrow(
        "SELECT status, attempts, next_attempt_at FROM webhook_delivery WHERE delivery_id = $1",
        raised["delivery_id"])
    assert (again["status"], again["attempts"]) == ("pending", 14)
    assert again["next_attempt_at"] == world.clock() + timedelta(seconds=5)
    assert world.handed_over == [(alert_id, TEAM)]


async def test_an_alert_another_endpoint_of_the_team_received_is_not_handed_over(
        world: World, receiver: Receiver) -> None:
    working = receiver.hook()
    await world.endpoint(working.url)
    await world.endpoint(receiver.hook(always=410).url)
    dispatcher = world.dispatcher()
    await world.feed(await world.alert())
    assert await world.step(dispatcher) == 2
    assert sorted(d["status"] for d in await world.deliveries()) == ["cancelled", "delivered"]
    assert world.handed_over == []
    assert await world.pool.fetchval(
        "SELECT handed_over FROM webhook_delivery WHERE status = 'cancelled'") is False


async def test_429_with_retry_after_is_honoured(world: World, receiver: Receiver) -> None:
    hook = receiver.hook((429, {"Retry-After": "120"}))
    _, secret = await world.endpoint(hook.url)
    dispatcher = world.dispatcher()
    await world.feed(await world.alert())
    assert await world.step(dispatcher) == 1
    world.clock.advance(seconds=60)                   # the schedule alone would say 5 s
    assert await world.step(dispatcher) == 0
    world.clock.advance(seconds=61)
    assert await world.step(dispatcher) == 1
    assert [d["status"] for d in await world.deliveries(hook)] == ["delivered"]
    assert len(hook.received) == 2 and verified_by(secret, hook.received[1])


async def test_signal_only_carries_the_id_action_version_and_link_only(
        world: World, receiver: Receiver) -> None:
    hook = receiver.hook()
    _, secret = await world.endpoint(hook.url, signal_only=True)
    dispatcher = world.dispatcher()
    alert_id = await world.alert()
    await world.feed(alert_id)
    await world.step(dispatcher)
    [received] = hook.received
    assert verified_by(secret, received)
    assert received.data == {"alert_id": alert_id, "action": "raised", "version": 1,
                             "link": f"https://duty.example.org/alerts/{alert_id}"}
    assert tuple(received.data) == SIGNAL_FIELDS
    for private in (PERSON, "Released with nowhere", "prison-release", TEAM):
        assert private.encode() not in received.body


async def test_a_new_endpoint_starts_at_the_feed_end_and_sends_the_actions_it_wants(
        world: World, receiver: Receiver) -> None:
    alert_id = await world.alert()
    await world.feed(alert_id)                         # before the endpoint: never sent
    hook = receiver.hook()
    await world.endpoint(hook.url, actions=["raised", "acknowledged"])
    dispatcher = world.dispatcher()
    await world.feed(alert_id, "commented", 2)
    await world.feed(alert_id, "acknowledged", 3)
    await world.feed(alert_id, "escalated", 4)
    assert await world.step(dispatcher) == 1
    assert [r.data["action"] for r in hook.received] == ["acknowledged"]


async def test_rows_of_an_open_transaction_wait_for_it_even_behind_later_commits(
        world: World, receiver: Receiver) -> None:
    hook = receiver.hook()
    endpoint_id, _ = await world.endpoint(hook.url)
    dispatcher = world.dispatcher()
    early, late = await world.alert(), await world.alert()
    async with world.pool.acquire() as slow:
        open_transaction = slow.transaction()
        await open_transaction.start()
        try:
            await world.feed(early, conn=slow)         # the smaller seq, still uncommitted
            await world.feed(late)                     # a higher seq, committed first
            seqs = {r["alert_id"]: r["seq"] for r in await world.pool.fetch(
                "SELECT alert_id::text, seq FROM team_feed")}
            assert seqs[late] > (await slow.fetchval("SELECT max(seq) FROM team_feed"
                                                     " WHERE alert_id = $1::uuid", early))
            assert await world.step(dispatcher) == 0
            assert hook.received == [] and await world.deliveries(hook) == []
        finally:
            await open_transaction.commit()
    assert await world.step(dispatcher) == 2
    assert sorted(r.data["alert_id"] for r in hook.received) == sorted([early, late])
    cursor = await world.pool.fetchval(
        "SELECT last_seq FROM webhook_endpoint WHERE endpoint_id = $1::uuid", endpoint_id)
    assert cursor == seqs[late]


async def test_run_delivers_as_rows_arrive_until_stopped(world: World,
                                                         receiver: Receiver) -> None:
    hook = receiver.hook()
    _, secret = await world.endpoint(hook.url)
    stop = asyncio.Event()
    dispatcher = world.dispatcher(webhook_poll_seconds=0.02)
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        await world.feed(await world.alert())
        for _ in range(500):                           # 10 s at most
            if hook.received:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    assert len(hook.received) == 1 and verified_by(secret, hook.received[0])


async def test_the_cli_adds_lists_rotates_disables_enables_and_redrives(
        world: World, receiver: Receiver, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")              # the tables unwrapped
    parser = argparse.ArgumentParser()
    register_commands(parser.add_subparsers(dest="command"), lambda: world.settings)

    async def joinedup(*argv: str) -> tuple[int, str, str]:
        args = parser.parse_args(["webhook", *argv])
        code = await asyncio.to_thread(args.handler, args)
        out, err = capsys.readouterr()
        return code, out, err

    hook = receiver.hook()
    code, out, _ = await joinedup("add", TEAM, hook.url + "?token=receivers-own",
                                  "--signal-only", "--actions", "raised,escalated", "woke",
                                  "--by", "duty.manager")
    assert code == 0
    endpoint_id = out.split()[1]
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    code, out, _ = await joinedup("list", "--team", TEAM)
    assert code == 0 and endpoint_id in out and "signal-only" in out
    assert "raised escalated woke" in out and "receivers-own" not in out
    code, out, _ = await joinedup("rotate", endpoint_id, "--overlap-hours", "1", "--by", "ops")
    assert code == 0 and out.strip().splitlines()[-1].startswith("whsec_")
    assert await world.pool.fetchval(
        "SELECT count(*) FROM webhook_secret WHERE endpoint_id = $1::uuid "
        "AND expires_at IS NOT NULL", endpoint_id) == 1
    assert (await joinedup("disable", endpoint_id, "--by", "ops"))[0] == 0
    assert (await joinedup("enable", endpoint_id, "--by", "ops"))[0] == 0
    code, _, err = await joinedup("add", "leeds-housing/nobody", hook.url, "--by", "ops")
    assert code == 2 and "no team" in err
    code, _, err = await joinedup("add", TEAM, "ftp://example.org/", "--by", "ops")
    assert code == 2 and "http(s)://" in err
    code, _, err = await joinedup("add", TEAM, hook.url, "--actions", "paged", "--by", "ops")
    assert code == 2 and "unknown actions paged" in err
    code, _, err = await joinedup("redrive", str(uuid.uuid4()), "--by", "ops")
    assert code == 2 and "no dead delivery" in err
    code, out, _ = await joinedup("deliveries", endpoint_id, "--status", "dead")
    assert code == 0

    changes = await world.pool.fetch(
        "SELECT changed_by, action, subject, detail FROM duty_change ORDER BY seq")
    assert [(c["changed_by"], c["action"], c["subject"]) for c in changes] == [
        ("duty.manager", "webhook-added", TEAM), ("ops", "webhook-secret-rotated", TEAM),
        ("ops", "webhook-disabled", TEAM), ("ops", "webhook-enabled", TEAM)]
    assert all("receivers-own" not in c["detail"] for c in changes)
