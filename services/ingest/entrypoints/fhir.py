"""FHIR R4 Task referrals on the gateway: ``POST /fhir/Task``, ``PUT /fhir/Task/{id}``,
``GET /fhir/Task`` (search) and ``GET /fhir/Task/{id}``. Translation only: the Task is read
by ``services/ingest/formats/fhir``, published by the gateway's own publish handler (claims,
acks=all, confirmation), and searched in the ``fhir_task`` read model. docs/formats-fhir.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from projections.queries import fhir as sql
from services.common.db import DATABASE_UNAVAILABLE
from services.ingest.auth import Principal
from services.ingest.entrypoints.body import JSON, RequestRefused, read_json
from services.ingest.entrypoints.publishing import (
    IN_PROGRESS_RETRY_AFTER_SECONDS,
    RETRY_AFTER_SECONDS,
)
from services.ingest.formats.fhir import search
from services.ingest.formats.fhir import systems as uri
from services.ingest.formats.fhir.examples import BUNDLE_EXAMPLE, OUTCOME_EXAMPLE, TASK_EXAMPLE
from services.ingest.formats.fhir.resources import FHIR_JSON, operation_outcome, searchset
from services.ingest.formats.fhir.task import (
    Issue,
    PostedTask,
    read_task,
    referral_event,
    referral_id,
)
from services.ingest.handlers import publish_events

_bearer = HTTPBearer(auto_error=False, description="the agency's API token")


class _Refused(Exception):
    def __init__(self, status: int, issues: list[Issue],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.issues, self.headers = status, issues, headers


def _outcome(status: int, issues: list[Issue], headers: dict[str, str] | None = None
             ) -> Response:
    return JSONResponse(operation_outcome(issues), status_code=status, headers=headers,
                        media_type=FHIR_JSON)


def invalid_parameters(errors: Sequence[Mapping[str, Any]]) -> Response:
    """FastAPI's refusal of a parameter as an OperationOutcome: the element and why, never
    the value (FastAPI's own answer repeats the input, which can be an identifier)."""
    return _outcome(400, [Issue(".".join(str(part) for part in e.get("loc", ())),
                                str(e.get("msg", "invalid")), basic=True) for e in errors])


def _fhir(resource: dict[str, Any], status: int = 200,
          headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(resource, status_code=status, headers=headers, media_type=FHIR_JSON)


async def _caller(request: Request, credentials: HTTPAuthorizationCredentials | None
                  ) -> Principal:
    token = credentials.credentials if credentials else None
    found = await request.app.state.gateway.credentials.principal(token)
    if found is None:
        raise _Refused(401, [Issue("Authorization", "a valid bearer token is required",
                                   "login")], {"WWW-Authenticate": 'Bearer realm="joinedup"'})
    request.state.agency = found.agency_id
    return found


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    texts = {400: "the body is not a FHIR Task (names the element)",
             401: "no valid bearer token", 403: "not the Task's requester or owner",
             404: "no Task visible to your agency", 409: "this version (Task id and "
             "lastModified) was written before with other content, or is being written now",
             415: "wrong content type", 422: "the Task breaks joinedup's rules (names the "
             "element); on a search, never (its parameters are read as text, and bad values "
             "answered 400)", 503: "the event log did not acknowledge: nothing written, retry"}
    return {code: {"description": texts[code], "content": {FHIR_JSON: {
        "schema": {"type": "object"}, "example": OUTCOME_EXAMPLE}}} for code in codes}


def fhir_router() -> APIRouter:
    router = APIRouter(prefix="/fhir", tags=["fhir"])
    task_body = {"requestBody": {"required": True, "content": {
        FHIR_JSON: {"schema": {"type": "object"}, "example": TASK_EXAMPLE}}}}
    task_answer = {"content": {FHIR_JSON: {"schema": {"type": "object"},
                                           "example": TASK_EXAMPLE}}}
    refusals = _responses(400, 401, 403, 404, 409, 415, 422, 503)

    @router.post("/Task", operation_id="createFhirTask", status_code=201, response_model=None,
                 responses={201: {"description": "the Task's event is on the log (acks=all)",
                                  **task_answer},
                            200: {"description": "this version was accepted before",
                                  **task_answer}, **refusals}, openapi_extra=task_body)
    async def create_task(request: Request, credentials: HTTPAuthorizationCredentials | None
                          = Depends(_bearer)) -> Response:
        """Create a Task (a referral). A Task without an id gets one; to retry safely, give
        the id (or PUT it): the idempotency key is (agency, Task id, lastModified)."""
        return await _answer(_write(request, credentials, None, created=201))

    @router.put("/Task/{task_id}", operation_id="updateFhirTask", response_model=None,
                responses={200: {"description": "the version's event is on the log",
                                 **task_answer}, **refusals}, openapi_extra=task_body)
    async def update_task(task_id: str, request: Request,
                          credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
                          ) -> Response:
        """Write a new version of a Task (or create it with this id): a status change by
        its requester or owner becomes the referral event of that status."""
        return await _answer(_write(request, credentials, task_id, created=200))

    @router.get("/Task", operation_id="searchFhirTasks", response_model=None, responses={
        200: {"description": "a searchset Bundle, oldest lastUpdated first",
              "content": {FHIR_JSON: {"schema": {"type": "object"},
                                      "example": BUNDLE_EXAMPLE}}},
        **_responses(400, 401, 422)})
    async def search_tasks(
            request: Request,
            owner: str | None = Query(None, description="Organization/<agency id>"),
            requester: str | None = Query(None, description="Organization/<agency id>"),
            status: str | None = Query(None, description="a Task status"),
            last_updated: list[str] = Query([], alias="_lastUpdated", description=(
                "gt|ge|lt|le followed by an instant or date, e.g. gt2026-03-02T09:00:00Z; "
                "repeat for a range")),
            count: str | None = Query(None, alias="_count", description=(
                f"page size, 1-{search.MAX_COUNT} (default {search.DEFAULT_COUNT})")),
            page: str | None = Query(None, alias="_page", description=(
                "opaque: follow the Bundle's next link")),
            credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Response:
        """Tasks your agency requested or owns (never others'), filtered, paged by the
        Bundle's `next` link. Poll with `owner=Organization/<you>&_lastUpdated=gt<last>`."""
        async def find() -> Response:
            who = await _caller(request, credentials)
            filters = [who.agency_id, search.organization("owner", owner),
                       search.organization("requester", requester),
                       *search.bounds(last_updated), status]
            size = search.page_size(count)
            after = search.cursor(page)
            pool = request.app.state.gateway.pool
            async with pool.acquire() as conn:
                total = await conn.fetchval(sql.COUNT_TASKS, *filters)
                rows = await conn.fetch(sql.SEARCH_TASKS, *filters, *after, size + 1)
            more = len(rows) > size
            rows = rows[:size]
            next_link = None
            if more:
                last = rows[-1]
                next_link = str(request.url.include_query_params(_page=search.encode(
                    last["last_updated"], last["referral_id"])))
            return _fhir(searchset([json.loads(r["resource"]) for r in rows], total,
                                   str(request.base_url).rstrip("/"), str(request.url),
                                   next_link))
        return await _answer(find())

    @router.get("/Task/{task_id}", operation_id="readFhirTask", response_model=None,
                responses={200: {"description": "the Task's latest version", **task_answer},
                           **_responses(401, 404, 422)})
    async def read_task_by_id(task_id: str, request: Request,
                              credentials: HTTPAuthorizationCredentials | None
                              = Depends(_bearer)) -> Response:
        """The latest version of a Task your agency requested or owns."""
        async def read() -> Response:
            who = await _caller(request, credentials)
            async with request.app.state.gateway.pool.acquire() as conn:
                text = await conn.fetchval(sql.READ_TASK, who.agency_id, task_id)
            if text is None:
                raise _Refused(404, [Issue("Task.id", "no such Task for your agency",
                                           "not-found")])
            return _fhir(json.loads(text))
        return await _answer(read())

    return router


async def _answer(work: Any) -> Response:
    """Run a route's work; refusals become OperationOutcomes."""
    try:
        result: Response = await work
    except _Refused as refused:
        return _outcome(refused.status, refused.issues, refused.headers)
    except search.SearchRefused as refused:
        return _outcome(400, [refused.issue])
    except RequestRefused as refused:  # the body's size and JSON, as the gateway reads them
        return _outcome(refused.status, [Issue("Task", p.reason, "structure")
                                         for p in refused.problems])
    except DATABASE_UNAVAILABLE as exc:
        # The credential, the Task's parties, a search: read before anything is published,
        # so nothing was written. An OperationOutcome, as every FHIR answer (the app's own
        # handler would answer problem+json); the type only: the driver's message can
        # quote parameters.
        return _outcome(503, [Issue("Task", f"a dependency is unavailable "
                                    f"({type(exc).__name__}); retry", "transient")],
                        {"Retry-After": RETRY_AFTER_SECONDS})
    return result


async def _write(request: Request, credentials: HTTPAuthorizationCredentials | None,
                 task_id: str | None, created: int) -> Response:
    """Publish the Task's event; answer ``created`` for a new version, 200 for a retry."""
    who = await _caller(request, credentials)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind not in (FHIR_JSON, JSON):
        raise _Refused(415, [Issue("Content-Type", f"must be {FHIR_JSON}", "not-supported")])
    settings = request.app.state.settings
    body = await read_json(request, settings.api_max_body_bytes)
    task = read_task(body, task_id)
    if isinstance(task, list):
        raise _Refused(400 if any(i.basic for i in task) else 422, task)
    gateway = request.app.state.gateway
    async with gateway.pool.acquire() as conn:
        parties = await conn.fetchrow(sql.TASK_PARTIES,
                                      referral_id(task.requester, task.task_id))
        kinds = {r["agency_id"]: r["service_kind"] for r in await conn.fetch(
            sql.AGENCY_KINDS, [who.agency_id, task.owner])}
    if parties is not None and who.agency_id not in tuple(parties):
        # somebody else's Task: as if it did not exist
        raise _Refused(404, [Issue("Task.id", "no such Task for your agency", "not-found")])
    event = referral_event(task, who.agency_id, kinds, datetime.now(UTC),
                           timedelta(seconds=settings.api_future_tolerance_seconds))
    if isinstance(event, list):
        raise _Refused(403 if any(i.code == "forbidden" for i in event) else 422, event)
    [outcome] = await publish_events(gateway, who.agency_id, [event],
                                     request.headers.get("traceparent"))
    request.app.state.metrics.outcomes(who.agency_id, [outcome])
    if outcome.status == "conflict":
        raise _Refused(409, [Issue("Task.lastModified", "this version of the Task was "
                                   "written before with other content", "conflict")])
    if outcome.status == "in_progress":
        raise _Refused(409, [Issue("Task", "this version is being written now; retry",
                                   "transient")],
                       {"Retry-After": IN_PROGRESS_RETRY_AFTER_SECONDS})
    if not outcome.written:
        raise _Refused(503, [Issue("Task", "the event log did not acknowledge: nothing "
                                   "was written, retry", "transient")],
                       {"Retry-After": RETRY_AFTER_SECONDS})
    status = created if outcome.status == "accepted" else 200
    return _written(task, json.loads(event.extra[uri.TASK_KEY]), status)


def _written(task: PostedTask, resource: dict[str, Any], status: int) -> Response:
    version = resource["meta"]["versionId"]
    return _fhir(resource, status, {
        "Location": f"/fhir/Task/{task.task_id}/_history/{version}",
        "ETag": f'W/"{version}"'})
