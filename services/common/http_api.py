"""What the read API and the duty service's API share: problem details (RFC 9457) for
malformed requests, unavailable servers and Starlette's own refusals, never repeating what
the caller sent; health endpoints; and an OpenAPI document that includes the problem model.
Each app adds its own refusals on top."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.db import DATABASE_UNAVAILABLE
from services.common.validation import Problem
from services.ingest.entrypoints import schemas as problems
from services.ingest.entrypoints.openapi import RequestExamples, documented_app, polish
from services.ingest.entrypoints.problem_types import problem_pages
from services.ingest.entrypoints.publishing import problem_response

__all__ = ["add_health", "add_problem_handlers", "documented_app", "field_path",
           "with_problem_models"]

_FIELD_NAME = re.compile(r"^[a-z_]{1,40}$|^[0-9]{1,4}$")


def field_path(loc: Sequence[object]) -> str:
    """Where a problem is, by field names and positions only: an unknown key the caller
    sent (``extra_forbidden``) is shown as ``*``, since a key can be an identifier too."""
    return ".".join(str(p) if _FIELD_NAME.match(str(p)) else "*" for p in loc)


def with_problem_models(app: FastAPI, *extra: type[BaseModel],
                        request_examples: RequestExamples | None = None) -> None:
    """The app's OpenAPI document, with the problem-details model (and ``extra`` models
    that no route returns as JSON, such as a stream's entries) among its schemas, and the
    examples of ``openapi.polish`` (``request_examples``: by operation id, then media type)."""
    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            made = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes,
                               tags=app.openapi_tags)
            _, top = models_json_schema(
                [(problems.ProblemDetails, "validation"),
                 *((model, "serialization") for model in extra)],
                ref_template="#/components/schemas/{model}")
            made.setdefault("components", {}).setdefault("schemas", {}).update(top["$defs"])
            app.openapi_schema = polish(made, request_examples or {})
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def add_health(app: FastAPI, pool_of: Callable[[Request], Any]) -> None:
    """``/healthz`` (the process is up) and ``/readyz`` (PostgreSQL answers, through the
    pool ``pool_of`` gives for a request)."""
    @app.get("/healthz", tags=["operations"], operation_id="checkLiveness",
             response_model=dict[str, str])
    async def healthz() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], operation_id="checkReadiness",
             response_model=dict[str, str])
    async def readyz(request: Request) -> Response:
        """PostgreSQL answers (readiness)."""
        try:
            await asyncio.wait_for(pool_of(request).fetchval("SELECT 1"), timeout=2.0)
        except DATABASE_UNAVAILABLE:
            return JSONResponse({"status": "unavailable", "database": "unavailable"},
                                status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})


def add_problem_handlers(app: FastAPI) -> None:
    app.include_router(problem_pages())  # what each problem's ``type`` points to

    async def invalid(request: Request, exc: Exception) -> Response:
        # FastAPI's own answer repeats the input, which can be an identifier.
        assert isinstance(exc, RequestValidationError)
        return problem_response(422, [Problem(field_path(e.get("loc", ())),
                                              str(e.get("msg", "invalid")),
                                              str(e.get("type", "invalid")))
                                      for e in exc.errors()], "Malformed request")

    async def unavailable(request: Request, exc: Exception) -> Response:
        return problem_response(503, [Problem(
            "request", f"a dependency is unavailable ({type(exc).__name__}); retry",
            "unavailable")])

    async def http_error(request: Request, exc: Exception) -> Response:
        # Starlette's own (an unreadable body, an unknown path) as problem details too.
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(exc.status_code, [Problem("request", str(exc.detail),
                                                          "refused")],
                                headers=dict(exc.headers or {}))

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    for error in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error, unavailable)
