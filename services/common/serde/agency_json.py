"""The agency event's JSON form, both ways: the shape (the gateway's ``application/json``
body and a CloudEvent's ``data``, mirroring ``schemas/agency_event.v3.avsc``), the event
built straight from a checked body (``event_from_body``), and an event's JSON body
(``event_to_json``, what the client posts).

One definition gives both the per-field errors (pydantic) and the OpenAPI description, so the
two cannot drift apart. Vocabularies come from ``services.common.events``; they are declared as
strings with an ``enum`` in the schema and checked here, so an unknown symbol gets a readable
reason instead of a list of every literal.

The payload is an object with a ``family`` discriminator (``referral``, ``transition``,
``discharge``, ``contact``, ``identity``) that must match the family in ``event_type``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from services.common.events import (
    ACCOMMODATION_STATUSES,
    DECLINE_REASONS,
    EVENT_TYPES,
    IDENTIFIER_SCHEMES,
    PAYLOAD_BY_FAMILY,
    SENSITIVITIES,
    SERVICE_KINDS,
    TRANSITION_KINDS,
    AgencyEvent,
    Identifier,
    Source,
)
from services.common.serde.avro import agency_codec


def one_of(values: tuple[str, ...] | frozenset[str], code: str = "not_in_vocabulary") -> object:
    """A string restricted to a vocabulary: ``enum`` in the schema, a plain reason on error."""
    allowed = tuple(sorted(values)) if isinstance(values, frozenset) else values

    def check(value: str) -> str:
        if value not in allowed:
            raise PydanticCustomError(code, "must be one of: {allowed}",
                                      {"allowed": ", ".join(allowed)})
        return value

    return Annotated[str, AfterValidator(check),
                     WithJsonSchema({"type": "string", "enum": list(allowed)})]


def _in_utc_range(value: datetime) -> datetime:
    # "0001-01-01T00:00:00+00:05" is a valid RFC 3339 time whose UTC instant is before year 1:
    # Python cannot hold it, and converting it used to end the request with a 500.
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("datetime_out_of_range",
                                  "is outside the years 1 to 9999 in UTC") from None
    return value


#: A time with its offset, whose instant in UTC Python (and Avro) can hold.
Moment = Annotated[AwareDatetime, AfterValidator(_in_utc_range)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
ServiceKind = one_of(SERVICE_KINDS)
Accommodation = one_of(ACCOMMODATION_STATUSES)
# Unknown schemes and bad check digits are refused by services.common.validation, with the
# same reasons a message published straight to Kafka gets; the schema lists the known ones.
Scheme = Annotated[str, Field(min_length=1, max_length=40),
                   WithJsonSchema({"type": "string", "enum": list(IDENTIFIER_SCHEMES)})]
EventType = one_of(EVENT_TYPES, "unknown_event_type")
Sensitivity = one_of(SENSITIVITIES)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceDetail(_Strict):
    service_kind: ServiceKind  # type: ignore[valid-type]
    system: Text
    team: Text | None = None
    area: Text | None = None


class SourceBody(SourceDetail):
    agency: Text = Field(description="the publishing agency's registered id: must be yours")


class IdentifierBody(_Strict):
    scheme: Scheme
    value: Annotated[str, Field(min_length=1, max_length=64)]


class ReferralBody(_Strict):
    family: Literal["referral"]
    referral_id: Text
    to_agency: Text
    to_service_kind: ServiceKind  # type: ignore[valid-type]
    reason: Text | None = None
    decline_reason: one_of(DECLINE_REASONS) | None = None  # type: ignore[valid-type]
    cites_service_kind: ServiceKind | None = None  # type: ignore[valid-type]
    decided_by: Text | None = None
    sla_working_days: Annotated[int, Field(ge=0, le=365)] | None = None
    outcome: Text | None = None


class TransitionBody(_Strict):
    family: Literal["transition"]
    transition_id: Text
    kind: one_of(TRANSITION_KINDS)  # type: ignore[valid-type]
    scheduled_for: date | None = None
    reason: Text | None = None
    accommodation_on_leaving: Accommodation | None = None  # type: ignore[valid-type]
    location: Text | None = None
    in_custody_treatment: bool | None = None


class DischargeBody(_Strict):
    family: Literal["discharge"]
    episode_id: Text | None = None
    destination_service_kind: ServiceKind | None = None  # type: ignore[valid-type]
    accommodation_on_leaving: Accommodation | None = None  # type: ignore[valid-type]


class ContactBody(_Strict):
    family: Literal["contact"]
    contact_id: Text
    mode: Text | None = None
    referral_id: Text | None = None


class IdentityNoticeBody(_Strict):
    """The other record of an ``identity.merged`` (or ``identity.unmerged``) notice: the
    event's identifiers name the record kept."""

    family: Literal["identity"]
    other_scheme: Scheme
    other_value: Annotated[str, Field(min_length=1, max_length=64)]


PayloadBody = Annotated[
    ReferralBody | TransitionBody | DischargeBody | ContactBody | IdentityNoticeBody,
    Field(discriminator="family")]
Identifiers = Annotated[list[IdentifierBody], Field(max_length=20)]
Extra = Annotated[dict[Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=1000)]],
                  Field(max_length=50)]


class EventBody(_Strict):
    """One agency event (``application/json``)."""

    event_id: UUID = Field(description="set by the publisher; the idempotency key")
    event_type: EventType = Field(description="<family>.<action>")  # type: ignore[valid-type]
    schema_version: Annotated[int, Field(ge=1, le=3)] | None = Field(
        None, description="ignored on input: the gateway writes the current schema version")
    occurred_at: Moment = Field(description="RFC 3339 with offset; kept to milliseconds")
    recorded_at: Moment = Field(description="when the agency system recorded it")
    causation_id: Text | None = None
    source: SourceBody
    identifiers: Annotated[Identifiers, Field(min_length=1)]
    sensitivity: Sensitivity = "GENERAL"  # type: ignore[valid-type]
    payload: PayloadBody
    extra: Extra = Field(default_factory=dict)


class CloudEventData(_Strict):
    """``data`` of a CloudEvent: the envelope fields CloudEvents has no attribute for."""

    recorded_at: Moment | None = Field(None, description="defaults to `time`")
    causation_id: Text | None = None
    source: SourceDetail
    identifiers: Identifiers = Field(default_factory=list)
    sensitivity: Sensitivity = "GENERAL"  # type: ignore[valid-type]
    payload: PayloadBody
    extra: Extra = Field(default_factory=dict)


class CloudEventBody(_Strict):
    """CloudEvents 1.0, structured mode (``application/cloudevents+json``).

    Mapping: ``id`` -> event_id; ``source`` (``/agencies/<agency id>`` or the bare id) ->
    source.agency; ``type`` -> event_type; ``time`` -> occurred_at; ``subject`` (optional,
    ``scheme:value``, a bare value is an NHS number as NHS England's notification services send
    it) -> one more person identifier; ``dataschema`` (optional, ending ``agency_event.vN`` or
    ``agency_event.vN.avsc``) -> schema_version; ``data`` -> everything else.
    """

    specversion: one_of(("1.0",))  # type: ignore[valid-type]
    id: UUID
    source: Text
    type: EventType  # type: ignore[valid-type]
    time: Moment
    subject: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    dataschema: Text | None = None
    datacontenttype: one_of(("application/json",)) | None = None  # type: ignore[valid-type]
    data: CloudEventData


class BatchBody(_Strict):
    """Up to the configured number of events; each is checked and answered on its own."""

    events: list[EventBody]


# --- the event from a checked body, and back ---------------------------------------------

_PAYLOAD_FIELDS = {family: tuple(f.name for f in dataclasses.fields(cls))
                   for family, cls in PAYLOAD_BY_FAMILY.items()}


def event_from_body(body: EventBody | CloudEventData, *, event_id: UUID, event_type: str,
                    occurred_at: datetime, recorded_at: datetime, source: Source,
                    identifiers: Sequence[IdentifierBody]) -> AgencyEvent:
    """The event a checked body describes, built straight from the models (no record dict
    in between). The envelope comes as arguments because a CloudEvent carries it in its own
    attributes. The caller has checked that the payload's family is the event type's."""
    family = body.payload.family
    payload = PAYLOAD_BY_FAMILY[family](**{
        name: getattr(body.payload, name, None) for name in _PAYLOAD_FIELDS[family]})
    return AgencyEvent(
        event_id=str(event_id), event_type=event_type,
        occurred_at=_millis(occurred_at), recorded_at=_millis(recorded_at), source=source,
        identifiers=tuple(Identifier(i.scheme, i.value) for i in identifiers),
        payload=payload, sensitivity=body.sensitivity,
        schema_version=agency_codec().current.version, causation_id=body.causation_id,
        extra=dict(body.extra))


def event_to_json(event: AgencyEvent) -> dict[str, Any]:
    """The gateway's JSON body of an event (``application/json``), absent fields left out."""
    def compact(values: dict[str, Any]) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, date | datetime) else v
                for k, v in values.items() if v is not None}

    body = compact({
        "event_id": event.event_id, "event_type": event.event_type,
        "occurred_at": event.occurred_at, "recorded_at": event.recorded_at,
        "causation_id": event.causation_id, "sensitivity": event.sensitivity,
        "extra": dict(event.extra)})
    body["source"] = compact(dataclasses.asdict(event.source))
    body["identifiers"] = [{"scheme": i.scheme, "value": i.value} for i in event.identifiers]
    body["payload"] = {"family": event.family, **compact(dataclasses.asdict(event.payload))}
    return body


def _millis(moment: datetime) -> datetime:
    """UTC, truncated to what Avro ``timestamp-millis`` keeps, so the event (and its content
    hash) is the one the log will hold."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
