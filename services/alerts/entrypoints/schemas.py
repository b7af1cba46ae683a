"""Request and response models of the alert API, with the examples its OpenAPI shows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.alerts.actions import MAX_COMMENT, OUTCOMES
from services.alerts.desk import Detail, HistoryEntry, Listed

_ALERT_ID = "3f0c6a52-6d0e-5c43-9c43-5b0c3b1f9a10"
Version = Annotated[int, Field(ge=1, description="the alert version this action is based on "
                                                 "(compare-and-set: 409 if it moved on)")]


Status = Literal["open", "acknowledged", "snoozed", "resolved"]
Severity = Literal["critical", "high", "medium", "low"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcknowledgeIn(_Strict):
    version: Version
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 1}]})


class AssignIn(_Strict):
    version: Version
    assignee: Annotated[str | None, Field(max_length=64, description="a member's username; "
                                                                     "null unassigns")]
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"version": 2, "assignee": "housing.officer"}]})


class CommentIn(_Strict):
    version: Version
    text: Annotated[str, Field(min_length=1, max_length=MAX_COMMENT)]
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"version": 3, "text": "Called the hostel; a bed is held until 5pm."}]})


class SnoozeIn(_Strict):
    version: Version
    until: datetime = Field(description="with its zone; within 30 days")
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"version": 3, "until": "2026-12-07T09:00:00+00:00"}]})


class ResolveIn(_Strict):
    version: Version
    outcome: str = Field(description="; ".join(f"{k}: {v}" for k, v in OUTCOMES.items()),
                         json_schema_extra={"enum": list(OUTCOMES)})
    note: Annotated[str | None, Field(max_length=MAX_COMMENT)] = None
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"version": 4, "outcome": "accommodation-secured",
                      "note": "Placed at the council's emergency accommodation."}]})


class AlertOut(BaseModel):
    alert_id: str
    version: int
    status: Status
    severity: str
    rule_id: str
    rule_version: str
    title: str
    team_id: str | None
    team_name: str | None
    tier: int
    person_id: str = Field(description="the opaque person id (read their records through "
                                       "the read API)")
    raised_at: datetime
    due_at: datetime | None
    expected: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    assignee: str | None
    snoozed_until: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    evidence_count: int
    area: str | None = Field(description="where the trigger happened (an ONS area code)")
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "alert_id": _ALERT_ID, "version": 1, "status": "open", "severity": "high",
        "rule_id": "prison-release-no-settled-accommodation", "rule_version": "2026.12.1",
        "title": "Released from prison with no settled accommodation",
        "team_id": "leeds-housing/options", "team_name": "Leeds housing options", "tier": 1,
        "person_id": "8f3c2d3a-0b6e-4c1e-9a77-2f0e5d9b4c11",
        "raised_at": "2026-12-06T10:00:00Z", "due_at": None,
        "expected": "settled accommodation on release", "acknowledged_at": None,
        "acknowledged_by": None, "assignee": None, "snoozed_until": None,
        "resolved_at": None, "resolution": None, "evidence_count": 0, "area": "E08000035"}]})

    @classmethod
    def of(cls, listed: Listed) -> AlertOut:
        a = listed.alert
        return cls(alert_id=a.alert_id, version=a.version, status=a.status,  # type: ignore[arg-type]
                   severity=a.severity, rule_id=a.rule_id, rule_version=a.rule_version,
                   title=a.title, team_id=a.team_id, team_name=listed.team_name, tier=a.tier,
                   person_id=a.person_key, raised_at=a.raised_at, due_at=a.due_at,
                   expected=a.expected, acknowledged_at=a.acknowledged_at,
                   acknowledged_by=a.acknowledged_by, assignee=a.assignee,
                   snoozed_until=a.snoozed_until, resolved_at=a.resolved_at,
                   resolution=a.resolution, evidence_count=a.evidence_count, area=a.area)


class AlertPage(BaseModel):
    alerts: list[AlertOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null "
                                                "at the end")


class HistoryOut(BaseModel):
    action: str
    at: datetime
    actor: str | None
    version: int | None = Field(description="the version an action was based on")
    resolution: str | None
    detail: str | None
    team_id: str | None
    tier: int | None
    assignee: str | None
    until: datetime | None
    comment: str | None

    @classmethod
    def of(cls, h: HistoryEntry) -> HistoryOut:
        return cls(action=h.action, at=h.at, actor=h.actor, version=h.version,
                   resolution=h.resolution, detail=h.detail, team_id=h.team_id, tier=h.tier,
                   assignee=h.assignee, until=h.until, comment=h.comment)


class AlertDetailOut(AlertOut):
    explanation: str = Field(description="the trigger, the window, what was looked for and "
                                         "not found, the rule and its source")
    source_reference: str
    history: list[HistoryOut]

    @classmethod
    def of_detail(cls, detail: Detail) -> AlertDetailOut:
        base = AlertOut.of(Listed(detail.alert, detail.team_name)).model_dump()
        return cls(**base, explanation=detail.alert.explanation,
                   source_reference=detail.alert.source_reference,
                   history=[HistoryOut.of(h) for h in detail.history])


class TeamOut(BaseModel):
    team_id: str
    name: str
    agency_id: str
    area: str | None
    escalates_to: str | None


class StreamEntry(BaseModel):
    """What each server-sent event's data holds (event name: the action)."""

    alert_id: str
    team_id: str
    action: str
    version: int = Field(description="the alert's version after this event")
    recorded_at: datetime
    alert: AlertOut | None = Field(description="the alert as it stands now (null if the "
                                               "team no longer works it)")
