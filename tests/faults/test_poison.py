"""An event that makes processing fail (not the servers: the event) is isolated and parked
with the failure's type, alone in its batch or among others; everything else is applied and
the worker goes on. A value the database driver cannot encode (asyncpg.DataError, an
InterfaceError) is such an event, not an outage to retry for ever."""

from __future__ import annotations

import asyncpg
import pytest

from services.common.settings import Settings
from services.processor.read_models import ReadModel
from tests.faults.conftest import FAST_RETRY, counts, start_in_process, wait_until
from tests.faults.test_positions import people_events
from tests.integration.processor.conftest import publish, read_topic

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("batch", [1, 50], ids=["alone", "in-a-batch"])
@pytest.mark.parametrize("failure", [ValueError, asyncpg.DataError], ids=["bug", "data-error"])
async def test_an_event_that_fails_processing_is_parked_and_the_rest_applied(
        migrated: Settings, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, batch: int,
        failure: type[Exception]) -> None:
    settings = migrated.model_copy(update={"batch_max_events": batch, **FAST_RETRY})
    events = people_events(40, seed=batch)
    poison = events[17]
    real_fold_all = ReadModel.fold_all

    def fold_failing_on_the_poison(self, states, batch_events):  # type: ignore[no-untyped-def]
        if self.name == "caseload" and any(e.event_id == poison.event_id
                                           for e in batch_events):
            raise failure("injected")
        return real_fold_all(self, states, batch_events)

    monkeypatch.setattr(ReadModel, "fold_all", fold_failing_on_the_poison)
    await publish(settings, events)
    running = await start_in_process(settings, rules=False)
    try:
        async def settled() -> bool:
            found = await counts(pool)
            return found["archive"] == len(events) - 1 and found["parked"] == 1
        await wait_until(settled, 60)
        parked = await read_topic(settings.kafka_bootstrap or "", settings.topics.dead_letter, 1)
    finally:
        await running.stop()
    [message] = parked
    assert dict(message.headers)["joinedup-reason"].decode() == (
        f"processing failed: {failure.__name__}")
    archived = {r[0] for r in await pool.fetch("SELECT event_id::text FROM event_archive")}
    assert poison.event_id not in archived
    assert archived == {e.event_id for e in events} - {poison.event_id}
