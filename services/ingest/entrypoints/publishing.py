"""POST /v1/events and POST /v1/events:batch: translate HTTP to the publish handler and back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.validation import Problem
from services.ingest.auth import Principal, may_publish
from services.ingest.domain.outcomes import Outcome, forbidden, refused
from services.ingest.domain.parsing import Parsed, parse_cloudevent, parse_event
from services.ingest.entrypoints import binary_mode
from services.ingest.entrypoints import schemas as s
from services.ingest.entrypoints.body import (
    CLOUDEVENT,
    CLOUDEVENT_BATCH,
    JSON,
    RequestRefused,
    media_type,
    read_json,
)
from services.ingest.entrypoints.problem_types import problem_type
from services.ingest.handlers import publish_events

RETRY_AFTER_SECONDS = "5"
IN_PROGRESS_RETRY_AFTER_SECONDS = "1"  # another request is writing the event: nearly done
Parse = Callable[[Any, datetime, timedelta], Parsed]
_bearer = HTTPBearer(auto_error=False, description="the agency's API token")


async def principal(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(
        _bearer)) -> Principal:
    token = credentials.credentials if credentials else None
    found = await request.app.state.gateway.credentials.principal(token)
    if found is None:
        raise RequestRefused(401, "Unauthenticated", [Problem(
            "authorization", "a valid bearer token is required", "unauthenticated")],
            {"WWW-Authenticate": 'Bearer realm="joinedup"'})
    request.state.agency = found.agency_id  # for the refusal metrics of this request
    return found


def publishing_router(max_batch_events: int) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["publishing"])
    common: dict[int | str, dict[str, Any]] = {
        401: s.UNAUTHENTICATED, 413: s.problem("body over the size limit"),
        415: s.problem("wrong content type"),
        431: s.problem("request line and headers over the size limit, or too many headers"),
        503: s.problem("the event log did not acknowledge, or too many requests are being "
                       "handled (code overloaded): nothing recorded, retry", s.UNAVAILABLE)}

    @router.post("/events", status_code=202, response_model=None, operation_id="publishEvent",
                 responses={
        202: {"description": "written and acknowledged by the broker (acks=all)",
              "content": {JSON: {"schema": s.ref("EventAccepted")}}},
        200: {"description": "already accepted before (same id, same content): not rewritten",
              "content": {JSON: {"schema": s.ref("EventAccepted")}}},
        403: s.problem("source.agency is not the credential's agency"),
        409: s.problem("the event id was accepted before with different content, or (code "
                       "in_progress) another request is writing it now: retry shortly",
                       s.UNAVAILABLE),
        422: s.problem("the event breaks the contract; problems name field and reason"),
        **common}, openapi_extra={"requestBody": s.single_request_body()})
    async def publish_event(request: Request, who: Principal = Depends(principal)) -> Response:
        """Publish one event: joinedup JSON, or a CloudEvent in structured mode or in binary
        mode (`ce-*` headers, `Content-Type: application/json`, the body is `data`). The
        event id is the idempotency key: posting the same event again answers 200 and
        writes nothing."""
        with request.app.state.metrics.latency.labels("single").time():
            kind = media_type(request, (JSON, CLOUDEVENT))
            body = await read_json(request, request.app.state.settings.api_max_body_bytes)
            parse: Parse = parse_cloudevent if kind == CLOUDEVENT else parse_event
            if kind == JSON and binary_mode.is_binary(request.headers):
                body = binary_mode.structured(request.headers, kind, body)
                parse = binary_mode.parse_binary
            [outcome] = await _publish(request, who, [body], parse)
        request.app.state.metrics.outcomes(who.agency_id, [outcome])
        if outcome.written:
            return JSONResponse(s.EventAccepted(
                status=outcome.status, event_id=outcome.event_id or "",  # type: ignore[arg-type]
                partition=outcome.partition or 0, offset=outcome.offset or 0).model_dump(),
                status_code=outcome.http_status)
        retry = {"Retry-After": IN_PROGRESS_RETRY_AFTER_SECONDS}
        return problem_response(outcome.http_status, outcome.problems,
                                headers=retry if outcome.status == "in_progress" else None)

    @router.post("/events:batch", response_model=None, operation_id="publishEvents",
                 responses={
        200: {"description": "every item answered; see items for each one's outcome",
              "content": {JSON: {"schema": s.ref("BatchResult")}}},
        422: s.problem("the batch itself is malformed or has too many events"),
        **common,
        503: {"description": "some items were not written (see items) or the service is "
                             "unavailable: retry the whole batch, it is idempotent",
              "headers": {"Retry-After": {"schema": {"type": "string"}}},
              "content": {JSON: {"schema": s.ref("BatchResult")},
                          s.PROBLEM_JSON: {"schema": s.ref("ProblemDetails")}}},
    }, openapi_extra={"requestBody": s.batch_request_body(max_batch_events)},
        description=f"Publish up to {max_batch_events} events; each is checked and answered on "
                    "its own. If the broker did not acknowledge some, `all_written` is false, "
                    "those items say `not_written` (or `in_progress`: another request is "
                    "writing them) and the status is 503: retry the batch.")
    async def publish_batch(request: Request, who: Principal = Depends(principal)) -> Response:
        with request.app.state.metrics.latency.labels("batch").time():
            kind = media_type(request, (JSON, CLOUDEVENT_BATCH))
            if binary_mode.is_binary(request.headers):
                raise RequestRefused(422, "Unprocessable batch", [Problem(
                    "headers", "binary mode (ce-* headers) carries one event: post it to "
                    "/v1/events, or send a batch as application/cloudevents-batch+json",
                    "binary_mode_batch")])
            body = await read_json(request, request.app.state.settings.api_max_body_bytes)
            items = _batch_items(body, kind == CLOUDEVENT_BATCH, max_batch_events)
            outcomes = await _publish(request, who, items, parse_cloudevent
                                      if kind == CLOUDEVENT_BATCH else parse_event)
        request.app.state.metrics.outcomes(who.agency_id, outcomes)
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        result = s.BatchResult(
            all_written=all(o.written for o in outcomes), counts=counts,
            not_written=counts.get("not_written", 0),
            items=[s.item_result(i, o) for i, o in enumerate(outcomes)])
        unavailable = any(o.retryable for o in outcomes)
        return JSONResponse(result.model_dump(), status_code=503 if unavailable else 200,
                            headers={"Retry-After": RETRY_AFTER_SECONDS} if unavailable else None)

    return router


async def _publish(request: Request, who: Principal, bodies: list[Any], parse: Parse
                   ) -> list[Outcome]:
    """Check every body, publish the good ones in one go, answer each in order."""
    settings = request.app.state.settings
    now = datetime.now(UTC)
    tolerance = timedelta(seconds=settings.api_future_tolerance_seconds)
    cloudevents = parse is not parse_event
    outcomes: list[Outcome | None] = []
    events, positions = [], []
    for body in bodies:
        event, problems = parse(body, now, tolerance)
        if event is None:
            outcomes.append(refused(problems, _claimed_id(body, cloudevents)))
        elif not may_publish(who, event):
            outcomes.append(forbidden(event.event_id))
        else:
            positions.append(len(outcomes))
            outcomes.append(None)
            events.append(event)
    if events:
        # The receipts database failing is answered like the broker failing: not written.
        published = await publish_events(request.app.state.gateway, who.agency_id, events,
                                         request.headers.get("traceparent"))
        for position, outcome in zip(positions, published, strict=True):
            outcomes[position] = outcome
    return [o for o in outcomes if o is not None]


def _batch_items(body: Any, cloudevents: bool, limit: int) -> list[Any]:
    if cloudevents:
        items, field = body, "body"
    else:
        items = body.get("events") if isinstance(body, dict) and set(body) == {"events"} else None
        field = "events"
    if not isinstance(items, list):
        raise RequestRefused(422, "Unprocessable batch", [Problem(
            field, "must be an array of events" if cloudevents else
            'the body must be {"events": [...]}', "schema_violation")])
    if len(items) > limit:
        raise RequestRefused(422, "Unprocessable batch", [Problem(
            field, f"has more than {limit} events; split it", "batch_too_large")])
    return items


def _claimed_id(body: Any, cloudevents: bool) -> str | None:
    """The event id of a refused event, echoed only when it is a well-formed UUID."""
    value = body.get("id" if cloudevents else "event_id") if isinstance(body, dict) else None
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


_TITLES = {403: "Forbidden", 409: "Conflict", 422: "Unprocessable event",
           503: "Service unavailable"}


def problem_response(status: int, problems: tuple[Problem, ...] | list[Problem],
                     title: str | None = None, headers: dict[str, str] | None = None) -> Response:
    title = title or _TITLES.get(status, "Refused")
    body = s.ProblemDetails(
        type=problem_type(status).uri, title=title, status=status,
        detail="; ".join(str(p) for p in problems) or title,
        problems=[s.ProblemItem(field=p.field, reason=p.reason, code=p.code) for p in problems])
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", RETRY_AFTER_SECONDS)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers,
                        media_type=s.PROBLEM_JSON)
