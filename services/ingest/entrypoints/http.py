"""The gateway's HTTP app: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from services.common.db import DATABASE_UNAVAILABLE
from services.common.http_api import field_path
from services.common.schema_registry import MEDIA_TYPE as REGISTRY_MEDIA_TYPE
from services.common.settings import Settings
from services.common.validation import Problem
from services.ingest.bootstrap import gateway_running
from services.ingest.entrypoints import schemas as s
from services.ingest.entrypoints.body import RequestRefused
from services.ingest.entrypoints.errors import RedactedErrors
from services.ingest.entrypoints.examples import REQUEST_EXAMPLES
from services.ingest.entrypoints.fhir import fhir_router, invalid_parameters
from services.ingest.entrypoints.hmpps import hmpps_router
from services.ingest.entrypoints.limits import RequestLimits
from services.ingest.entrypoints.metrics import UNAUTHENTICATED, GatewayMetrics
from services.ingest.entrypoints.openapi import documented_app, polish
from services.ingest.entrypoints.problem_types import problem_pages
from services.ingest.entrypoints.publishing import problem_response, publishing_router
from services.registry.http import registry_routers

DESCRIPTION = """
Agencies publish facts (referrals, transitions, discharges, contacts) as events.

* Authenticate with `Authorization: Bearer <token>` (issued by `joinedup agency create`).
  `source.agency` must be your own agency id.
* Bodies are `application/json` (the Avro contract `agency_event.v3` as JSON, with
  `payload.family` naming the payload record) or CloudEvents 1.0: structured mode
  (`application/cloudevents+json`; batches `application/cloudevents-batch+json`) or binary
  mode (`ce-specversion`, `ce-id`, `ce-source`, `ce-type`, `ce-time`... headers with the
  event's `data` as an `application/json` body). Extension attributes (`dataref`,
  `traceparent`, `filtering`...) are kept in the event's `extra` as `ce_<name>`.
* Refusals are RFC 9457 problem details; `type` is a page on this server (`/problems/...`).
* The event id is the idempotency key: a retry of the same event answers 200
  `already_accepted`; the same id with different content answers 409.
* 202 means the broker acknowledged the write with `acks=all`. 503 (with Retry-After) means it
  did not: nothing was recorded, retry with the same event id.
"""


def create_app(settings: Settings, *, migrate: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with gateway_running(settings, migrate=migrate) as gateway:
            app.state.gateway = gateway
            yield

    app = documented_app(title="joinedup ingest gateway", version="1", description=DESCRIPTION,
                         lifespan=lifespan, openapi_tags=[
                             {"name": "publishing", "description": "agencies publish their "
                              "events, one at a time or in batches"},
                             {"name": "hmpps", "description": "HMPPS domain events, "
                              "delivered by an SNS HTTPS subscription"},
                             {"name": "fhir", "description": "FHIR R4 Task referrals "
                              "(errors are FHIR OperationOutcome resources)"},
                             {"name": "schema-registry", "description": "the event schemas, "
                              "read-only, over the Confluent Schema Registry REST subset"},
                             {"name": "asyncapi", "description": "the AsyncAPI document of "
                              "the topics"},
                             {"name": "operations", "description": "health and metrics"}])
    app.state.settings = settings
    app.state.metrics = GatewayMetrics()
    app.include_router(publishing_router(settings.api_max_batch_events))
    app.include_router(problem_pages())
    app.include_router(fhir_router())
    app.include_router(hmpps_router(settings))
    app.include_router(registry_routers(settings.topics))
    _add_operations(app)
    _add_error_handlers(app)
    # Before any route runs: shed load, refuse oversized heads. (Middleware added later runs
    # outside, so RedactedErrors still wraps this.)
    app.add_middleware(RequestLimits, max_in_flight=settings.api_max_in_flight,
                       max_header_bytes=settings.api_max_header_bytes,
                       max_headers=settings.api_max_headers)
    app.add_middleware(RedactedErrors)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _add_operations(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], operation_id="checkLiveness",
             response_model=dict[str, str])
    async def healthz() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], operation_id="checkReadiness",
             response_model=dict[str, str], responses={
        503: {"description": "a dependency is down", "content": {"application/json": {
            "schema": {"type": "object", "additionalProperties": {"type": "string"}}}}}})
    async def readyz(request: Request) -> Response:
        """PostgreSQL and the broker both answer (readiness)."""
        gateway = request.app.state.gateway
        database = "ok"
        try:
            await asyncio.wait_for(gateway.pool.fetchval("SELECT 1"), timeout=2.0)
        except DATABASE_UNAVAILABLE:
            database = "unavailable"
        broker = "ok" if await gateway.publisher.ready() else "unavailable"
        ok = database == broker == "ok"
        return JSONResponse({"status": "ok" if ok else "unavailable", "database": database,
                             "broker": broker}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], operation_id="getMetrics",
             response_class=Response, responses={200: {"content": {"text/plain": {
                 "schema": {"type": "string"},
                 "example": "joinedup_ingest_events_total{agency=\"hmp-leeds\","
                            "outcome=\"accepted\"} 42.0\n"}}}})
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (agency ids and reason codes only, no personal data)."""
        registry: GatewayMetrics = request.app.state.metrics
        return Response(registry.render(), media_type=registry.content_type)


def _add_error_handlers(app: FastAPI) -> None:
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestRefused)
        agency = getattr(request.state, "agency", UNAUTHENTICATED)
        request.app.state.metrics.refused_request(agency, (p.code for p in exc.problems))
        return problem_response(exc.status, exc.problems, exc.title, exc.headers)

    async def unavailable(request: Request, exc: Exception) -> Response:
        # Type only: messages from the driver can quote SQL parameters.
        return problem_response(503, [Problem(
            "body", f"a dependency is unavailable ({type(exc).__name__}); retry",
            "unavailable")])

    async def invalid(request: Request, exc: Exception) -> Response:
        # FastAPI's own answer repeats the input, which can be an identifier. Each protocol's
        # routes refuse in their own shape: FHIR an OperationOutcome, the schema registry its
        # error body, the rest problem details.
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if request.url.path.startswith("/fhir/"):
            return invalid_parameters(errors)
        if request.url.path.startswith("/schema-registry/"):
            return JSONResponse({"error_code": 422, "message": "invalid " + ", ".join(
                field_path(e.get("loc", ())) for e in errors)}, status_code=422,
                media_type=REGISTRY_MEDIA_TYPE)
        return problem_response(422, [Problem(field_path(e.get("loc", ())),
                                              str(e.get("msg", "invalid")),
                                              str(e.get("type", "invalid"))) for e in errors],
                                "Malformed request")

    app.add_exception_handler(RequestRefused, refused)
    app.add_exception_handler(RequestValidationError, invalid)
    # The credential lookup is the database call outside the publish handler.
    for error in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error, unavailable)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes,
                               tags=app.openapi_tags)
        components = document.setdefault("components", {})
        components.setdefault("schemas", {}).update(s.component_schemas())
        app.openapi_schema = polish(document, REQUEST_EXAMPLES)
    return app.openapi_schema
