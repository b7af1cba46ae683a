"""The ``fhir_task`` read model: the latest version of each Task, folded from the log.

The gateway answers ``GET /fhir/Task`` from this table, not from a table of its own: the
log is the record, so the Tasks an agency can poll for are rebuilt with every other read
model (``joinedup rebuild``), forgotten and folded again when people are linked or
separated, and never hold a Task the log does not. The cost is that a search sees a Task
once the processor has applied its event (normally well under a second), not at the
moment the gateway answered 201.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from projections.queries import fhir as sql
from services.alerts.events import AlertEvent
from services.common.events import AgencyEvent, Referral
from services.ingest.formats.fhir.systems import TASK_KEY

if TYPE_CHECKING:  # the registry imports this module: no import back at load time
    from services.processor.adapters.store import Received
    from services.processor.read_models.registry import ReadModel


@dataclass(frozen=True, slots=True)
class TaskVersion:
    referral_id: str
    task_id: str
    requester_agency: str
    owner_agency: str
    person_key: str
    status: str
    last_updated: datetime
    version_id: str
    resource: str        # the Task's FHIR JSON (personal data)


def task_key(event: AgencyEvent) -> str:
    assert isinstance(event.payload, Referral)
    return event.payload.referral_id


def track_task(state: TaskVersion | None, event: AgencyEvent
               ) -> tuple[TaskVersion | None, list[None]]:
    """A newer version of the Task replaces the one held, if its requester or owner wrote
    it. Referral events without a Task (or erased: its text is gone) change nothing."""
    text = event.extra.get(TASK_KEY)
    if text is None or event.erased:
        return state, []
    resource: dict[str, Any] = json.loads(text)
    parties = ((state.requester_agency, state.owner_agency) if state is not None else
               (_agency(resource.get("requester")), _agency(resource.get("owner"))))
    if event.source.agency not in parties:
        return state, []
    version = TaskVersion(
        task_key(event), str(resource["id"]), _agency(resource.get("requester")),
        _agency(resource.get("owner")), event.person_key, str(resource["status"]),
        event.occurred_at, event.event_id, text)
    if state is not None and (version.last_updated, version.version_id) <= (
            state.last_updated, state.version_id):
        return state, []
    return version, []


def _agency(reference: Any) -> str:
    text = reference.get("reference", "") if isinstance(reference, dict) else ""
    return str(text).removeprefix("Organization/")


class TaskStore:
    """No cache, and no timer writes the table: nothing to lock, reset or settle."""

    lock: asyncio.Lock | None = None

    def committed(self) -> None:
        pass

    def rolled_back(self) -> None:
        pass

    def reset(self) -> None:
        pass

    async def forget(self, conn: asyncpg.Connection, people: Sequence[str]) -> None:
        await conn.execute(sql.FORGET_TASKS, people)

    async def load(self, conn: asyncpg.Connection, keys: Sequence[str],
                   batch: Sequence[Received]) -> dict[str, TaskVersion]:
        rows = await conn.fetch(sql.SELECT_TASKS, sorted(keys))
        return {row["referral_id"]: TaskVersion(**dict(row)) for row in rows}

    async def save(self, conn: asyncpg.Connection, states: Mapping[str, TaskVersion | None],
                   changes: Sequence[None], batch: Sequence[Received]
                   ) -> Sequence[AlertEvent]:
        # in key order, as the referrals store: concurrent upserts wait, never deadlock
        rows = sorted((s for s in states.values() if s is not None),
                      key=lambda s: s.referral_id)
        if rows:
            await conn.execute(sql.UPSERT_TASKS, *(
                [getattr(r, name) for r in rows] for name in TaskVersion.__slots__))
        return ()


def fhir_tasks() -> ReadModel[str, TaskVersion, None]:
    from services.processor.read_models.registry import ReadModel

    return ReadModel("fhir_tasks", {"referral": track_task}, task_key, TaskStore(),
                     ("fhir_task",))
