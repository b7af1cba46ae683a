"""`/v1/operations/dead-letters`: list, show, re-drive and purge over the read API, for
operations staff (the same service and audit as `joinedup dead-letters`).

No ``from __future__ import annotations`` here: the routes' annotations are evaluated where
they are defined, so the `Operator` dependency can be imported inside the function (the
operations module imports this one to list it in ``ROUTERS``)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from services.operations.dead_letters import DeadLetters, Filter
from services.reads.entrypoints.http import ERRORS

Status = Literal["open", "redriven", "purged", "all"]
StageName = Literal["admission", "intake", "alert-projector", "hmpps-intake"]  # services/common/dead_letters
LetterId = Annotated[int, Path(ge=1, description="the dead letter's number")]


class DeadLetterOut(BaseModel):
    id: int
    status: str = Field(description="open, redriven or purged")
    topic: str = Field(description="the topic it was parked from (where a re-drive sends it)")
    partition: int
    kafka_offset: int
    reason: str
    stage: str | None
    exception_class: str | None
    source_agency: str | None
    original_timestamp: datetime | None
    parked_at: datetime
    redrive_of: int | None = Field(description="the dead letter this was re-driven from")
    parked_again_as: int | None = Field(description="the dead letter its re-drive became")
    copy_partition: int | None
    copy_offset: int | None
    redriven_at: datetime | None
    redriven_by: str | None
    redriven_reason: str | None
    redriven_partition: int | None
    redriven_offset: int | None
    purged_at: datetime | None
    purged_by: str | None
    purged_reason: str | None


class ContentOut(BaseModel):
    form: str = Field(description="avro, json or raw (not decoded)")
    schema_name: str | None = Field(description="the Avro schema family and version")
    decoded: Any | None
    note: str | None = Field(description="why it was not (or only partly) decoded")
    hex: str
    base64: str


class HeaderOut(BaseModel):
    name: str
    value: str


class DeadLetterShown(BaseModel):
    dead_letter: DeadLetterOut
    key: str | None
    timestamp: datetime | None
    headers: list[HeaderOut] = Field(description="the message's own headers")
    error_headers: list[HeaderOut] = Field(description="those the parking added "
                                                       "(Kafka Connect's __connect.errors.*)")
    content: ContentOut | None
    problem: str | None = Field(description="why the copy could not be read back")


class Action(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="why (recorded)")


def _letters(request: Request) -> DeadLetters:
    side = request.app.state.side
    return DeadLetters(side.pool, side.settings)


def _headers(pairs: list[tuple[str, str]]) -> list[HeaderOut]:
    return [HeaderOut(name=k, value=v) for k, v in pairs]


def dead_letter_routes() -> APIRouter:
    from services.operations.entrypoints.http import Operator

    router = APIRouter(prefix="/v1/operations", tags=["operations"], responses=ERRORS)

    @router.get("/dead-letters", operation_id="listDeadLetters",
                response_model=list[DeadLetterOut])
    async def listing(who: Operator, request: Request,
                      reason: Annotated[str | None, Query(max_length=200)] = None,
                      source: Annotated[str | None, Query(max_length=255)] = None,
                      stage: StageName | None = None, since: datetime | None = None,
                      until: datetime | None = None, status: Status = "open",
                      limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                      ) -> list[dict[str, Any]]:
        """Dead letters, newest first: by reason (contains), source (agency or topic),
        stage, time parked and status."""
        return await _letters(request).list(
            who, Filter(reason, source, stage, since, until, status, limit))

    @router.get("/dead-letters/{letter_id}", operation_id="getDeadLetter",
                response_model=DeadLetterShown)
    async def show(letter_id: LetterId, who: Operator, request: Request) -> DeadLetterShown:
        """One dead letter: its reason, the original headers, its bytes decoded where they
        can be (else hex and base64, and why not)."""
        shown = await _letters(request).show(who, letter_id)
        content = shown.content
        return DeadLetterShown(
            dead_letter=DeadLetterOut(**shown.letter), key=shown.key,
            timestamp=shown.timestamp, headers=_headers(shown.headers),
            error_headers=_headers(shown.error_headers), problem=shown.problem,
            content=None if content is None else ContentOut(
                form=content.form, schema_name=content.schema, decoded=content.decoded,
                note=content.note, hex=content.hex, base64=content.base64))

    @router.post("/dead-letters/{letter_id}/redrive", operation_id="redriveDeadLetter",
                 response_model=DeadLetterOut,
                 responses={409: {"description": "already re-driven or purged"}})
    async def redrive(letter_id: LetterId, body: Action, who: Operator, request: Request
                      ) -> dict[str, Any]:
        """Send it back to the topic it was parked from, once the cause is fixed: it goes
        through the same checks again and reaches the read models once."""
        return await _letters(request).redrive(who, letter_id, body.reason)

    @router.post("/dead-letters/{letter_id}/purge", operation_id="purgeDeadLetter",
                 response_model=DeadLetterOut,
                 responses={409: {"description": "already purged"}})
    async def purge(letter_id: LetterId, body: Action, who: Operator, request: Request
                    ) -> dict[str, Any]:
        """Mark it dealt with, by whom and why. The record stays on the dead-letter topic
        (Kafka records cannot be deleted from an infinite-retention topic)."""
        return await _letters(request).purge(who, letter_id, body.reason)

    return router
