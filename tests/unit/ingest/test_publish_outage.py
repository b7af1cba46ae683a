"""publish_events when the receipts database fails part-way, with a fake pool and publisher.

What the broker acknowledged is on the log, so it keeps "accepted" (202) whatever the database
does next; what was not produced is "not_written" (503). Nothing raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from projections.queries import ingest as q
from services.common.db import DATABASE_UNAVAILABLE
from services.common.events import AgencyEvent
from services.ingest.adapters.publisher import Delivery
from services.ingest.handlers import Gateway, publish_events
from tests.factories import referral

# What asyncpg raised when PostgreSQL shut down under load (it escaped as a 500 before).
SHUTDOWN = asyncpg.InternalClientError(
    "cannot switch to state 15; another operation (2) is in progress")


class Pool:
    """Claims the ids in `free` (others are held elsewhere); every other statement fails."""

    def __init__(self, free: set[str]) -> None:
        self.free = free

    async def fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        if query == q.CLAIM_EVENT_IDS and self.free:
            return [{"event_id": i, "claimed_at": datetime.now(UTC)}
                    for i in args[1] if i in self.free]  # ($1 agency, $2 ids, $3 hashes)
        raise SHUTDOWN

    async def execute(self, query: str, *args: Any) -> str:
        raise SHUTDOWN


class Publisher:
    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, events: Sequence[AgencyEvent], traceparent: str | None = None,
                      seal: object = None) -> list[Delivery | None]:
        self.published += [e.event_id for e in events]
        return [Delivery("topic", 0, offset) for offset, _ in enumerate(events)]


def _gateway(pool: Pool, publisher: Publisher) -> Gateway:
    return Gateway(pool, publisher, credentials=None)  # type: ignore[arg-type]


async def test_acknowledged_events_stay_accepted_when_the_database_then_fails() -> None:
    mine, elsewhere = referral("made"), referral("made")
    publisher = Publisher()
    outcomes = await publish_events(_gateway(Pool({mine.event_id}), publisher), "hmp-leeds",
                                    [mine, elsewhere])
    # `mine` was produced, then recording it and looking `elsewhere` up both failed.
    assert publisher.published == [mine.event_id]
    assert [(o.status, o.event_id) for o in outcomes] == [
        ("accepted", mine.event_id), ("not_written", elsewhere.event_id)]


async def test_a_failed_claim_produces_nothing_and_answers_not_written() -> None:
    event = referral("made")
    publisher = Publisher()
    [outcome] = await publish_events(_gateway(Pool(set()), publisher), "hmp-leeds", [event])
    # (An empty `free` makes the claim itself fail.)
    assert publisher.published == []
    assert (outcome.status, outcome.http_status) == ("not_written", 503)


@pytest.mark.parametrize("error", [
    asyncpg.InternalClientError("protocol is in the failed state"),
    asyncpg.exceptions.ProtocolError("unexpected message"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CannotConnectNowError("the database system is shutting down"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InterfaceError("pool is closing"),
    asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
    asyncpg.LockNotAvailableError("canceling statement due to lock timeout"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    ConnectionRefusedError(111, "Connect call failed"),
    TimeoutError(),
])
def test_outage_errors_are_database_unavailable(error: Exception) -> None:
    assert isinstance(error, DATABASE_UNAVAILABLE)


@pytest.mark.parametrize("error", [
    asyncpg.UniqueViolationError("duplicate key"),
    asyncpg.PostgresSyntaxError("syntax error"),
    asyncpg.UndefinedTableError("relation does not exist"),
])
def test_bugs_are_not_disguised_as_outages(error: Exception) -> None:
    assert not isinstance(error, DATABASE_UNAVAILABLE)
