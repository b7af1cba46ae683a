"""`/v1/operations/people/{person_id}/explain` and `.../as-of`: investigations of one person
over the read API, for operations staff (the same service and audit as `joinedup explain`
and `joinedup as-of`: services/operations/investigate.py).

No ``from __future__ import annotations`` here: the routes' annotations are evaluated where
they are defined, so the `Operator` dependency can be imported inside the function (the
operations module imports this one to list it in ``ROUTERS``)."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from services.operations import investigate
from services.operations.investigate import Investigation
from services.processor.bootstrap import load_pack
from services.processor.domain.rules import RulePack
from services.processor.domain.rules.explain import trace_json
from services.processor.opening import Opener
from services.reads.domain.audit import PURPOSES, Caller
from services.reads.entrypoints.http import ERRORS
from services.reads.lookup import ReadRefused, uuid_or_none

Purpose = Annotated[str, Query(description=f"why (recorded): one of {', '.join(PURPOSES)}")]


class EventOut(BaseModel):
    agency: str
    event_id: str
    event_type: str
    service_kind: str
    occurred_at: datetime
    recorded_at: datetime


class MissOut(BaseModel):
    event: EventOut
    reason: str = Field(description="why it did not count, in words")


class TriggerOut(BaseModel):
    event_id: str
    agency: str | None = None
    event_type: str | None = None
    service_kind: str | None = None
    occurred_at: datetime | None = None
    recorded_at: datetime | None = None


class ExpectationOut(BaseModel):
    alert_id: str = Field(description="the expectation's id, which is the id of its alert")
    status: str = Field(description="open, fulfilled, withdrawn, alerted or resolved")
    fired: bool
    why: str
    trigger: TriggerOut
    window_start: datetime
    due_at: datetime | None
    raised_at: datetime | None
    closed_at: datetime | None
    fulfilled_by: str | None
    resolution: str | None
    near_misses: list[MissOut]


class RuleOut(BaseModel):
    rule_id: str
    kind: str
    version: str
    fired: bool
    why: str
    expectations: list[ExpectationOut]
    trigger_misses: list[MissOut] = Field(description="events of the trigger's type and "
                                          "kind that failed a further condition")
    idle_triggers: list[MissOut] = Field(description="events that matched the trigger and "
                                         "opened or raised nothing")


class ExplanationOut(BaseModel):
    person_id: str
    at: datetime = Field(description="deadlines judged at this time")
    events: int
    rules: list[RuleOut]


class TimelineOut(BaseModel):
    occurred_at: datetime
    recorded_at: datetime
    event_id: str
    event_type: str
    source_agency: str
    service_kind: str
    sensitivity: str
    summary: str


class CaseloadOut(BaseModel):
    agency: str
    service_kind: str
    active: bool
    since: datetime
    last_event_at: datetime
    last_event_id: str
    ended_reason: str | None


class ReferralOut(BaseModel):
    referral_id: str
    from_agency: str
    to_agency: str
    to_service_kind: str
    status: str
    status_at: datetime
    last_event_id: str


class OpenExpectationOut(BaseModel):
    alert_id: str
    rule_id: str
    trigger_event_id: str
    window_start: datetime
    due_at: datetime
    expected: str


class DutyActionOut(BaseModel):
    action: str
    at: datetime
    actor: str | None


class AlertThenOut(BaseModel):
    alert_id: str
    rule_id: str
    severity: str
    title: str
    duty_team: str
    raised_at: datetime
    due_at: datetime | None
    status: str = Field(description="its state then: open, acknowledged, snoozed or resolved")
    resolved_at: datetime | None
    resolution: str | None
    duty_actions: list[DutyActionOut]


class AsOfOut(BaseModel):
    person_id: str
    at: datetime
    events: int = Field(description="events recorded and archived by then")
    timeline: list[TimelineOut]
    caseload: list[CaseloadOut]
    referrals: list[ReferralOut]
    open_expectations: list[OpenExpectationOut]
    alerts: list[AlertThenOut]


def people_routes() -> APIRouter:
    from services.operations.entrypoints.http import Operator

    router = APIRouter(prefix="/v1/operations", tags=["operations"], responses=ERRORS)
    packs: dict[str, RulePack] = {}  # read once per app: the worker's pack, from settings

    def how(request: Request, who: Caller, purpose: str) -> tuple[Any, Investigation]:
        if purpose not in PURPOSES:
            raise ReadRefused("invalid", f"purpose is one of {', '.join(PURPOSES)}")
        side = request.app.state.side
        if "pack" not in packs:
            packs["pack"] = load_pack(side.settings)
        opener = Opener(side.reads.key_ring)  # the read side's key ring and its cache
        return side.pool, Investigation(packs["pack"], opener, who, purpose)

    def person(person_id: str) -> str:
        found = uuid_or_none(person_id)
        if found is None:
            raise ReadRefused("not_found", "no such person")
        return found

    @router.get("/people/{person_id}/explain", operation_id="explainPerson",
                response_model=ExplanationOut)
    async def explain(person_id: str, who: Operator, request: Request, purpose: Purpose,
                      rule: Annotated[str | None, Query(max_length=100)] = None,
                      at: datetime | None = None) -> dict[str, Any]:
        """Why each rule's alert did or did not fire for the person: the engine's fold of
        their archived events, traced (with ``at``: only events known by then, deadlines
        judged then). Audited."""
        pool, investigation = how(request, who, purpose)
        found = await investigate.explain(pool, investigation, person(person_id),
                                          _aware(at) or datetime.now(UTC), rule,
                                          known_only=at is not None)
        return trace_json(found)

    @router.get("/people/{person_id}/as-of", operation_id="personAsOf",
                response_model=AsOfOut)
    async def as_of(person_id: str, at: datetime, who: Operator, request: Request,
                    purpose: Purpose) -> dict[str, Any]:
        """The person's timeline, caseload, referrals, open expectations and alerts as
        joinedup knew them at ``at`` (events recorded and archived by then; duty actions
        up to then). Every agency's entries: operations staff only. Audited."""
        pool, investigation = how(request, who, purpose)
        moment = _aware(at)
        assert moment is not None
        return await investigate.as_of_person(pool, investigation, person(person_id), moment)

    return router


def _aware(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
