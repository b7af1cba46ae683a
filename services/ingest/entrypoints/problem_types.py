"""RFC 9457 problem types: one per kind of refusal, each with a page that explains it.

The ``type`` of a problem is a relative URI, ``/problems/<slug>``: it resolves against the
address the client called (RFC 9457, 3.1.1), so every app serves the page itself and no host
name is made up. The per-field ``problems[].code`` says what exactly was wrong.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

BASE: Final = "/problems/"


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    title: str
    explanation: str

    @property
    def uri(self) -> str:
        return f"{BASE}{self.slug}"


_TYPES: Final = {status: ProblemType(*fields) for status, fields in {
    400: ("bad-request", "Bad request", "The request could not be read (for example a body "
          "that is not JSON). Fix the request; retrying it unchanged will not help."),
    401: ("unauthenticated", "Unauthenticated", "No valid bearer token: it is missing, "
          "unknown, expired or revoked. Sign in again or ask for a new token."),
    403: ("forbidden", "Forbidden", "The caller is known but may not do this (another "
          "agency's events, a person outside the reader's teams, a missing role), or a "
          "signed delivery's signature does not verify (an SNS message: the problem names "
          "the field)."),
    404: ("not-found", "Not found", "Nothing is at this address, or nothing the caller may "
          "see: the two are answered alike, so a 404 discloses nothing."),
    405: ("method-not-allowed", "Method not allowed", "The address exists but not with this "
          "HTTP method."),
    409: ("conflict", "Conflict", "The request conflicts with what is recorded: an event id "
          "accepted before with other content, an action already taken, or (code "
          "in_progress) another request writing the same event: retry shortly."),
    413: ("too-large", "Body too large", "The body is over the size limit: split a batch."),
    415: ("unsupported-media-type", "Unsupported media type", "The Content-Type is not one "
          "the operation takes; the problem lists the accepted ones."),
    422: ("unprocessable", "Unprocessable", "The request is well formed but breaks the "
          "contract: each entry of problems names the field and the reason (never the "
          "value sent)."),
    429: ("too-many-requests", "Too many requests", "Slow down; Retry-After says when."),
    431: ("headers-too-large", "Request header fields too large", "The request line and "
          "headers are over the limit, or there are too many headers."),
    500: ("internal-error", "Internal error", "An unexpected error; it has been logged "
          "(without the request's content). Retrying may help."),
    503: ("unavailable", "Service unavailable", "A dependency (the broker, the database) "
          "did not answer, or the server is shedding load: nothing was recorded; retry "
          "after Retry-After seconds with the same request."),
}.items()}
_OTHER: Final = ProblemType("refused", "Refused", "The request was refused; the detail and "
                            "problems say why.")
_BY_SLUG: Final = {t.slug: t for t in (*_TYPES.values(), _OTHER)}


def problem_type(status: int) -> ProblemType:
    return _TYPES.get(status, _OTHER)


def all_types() -> tuple[ProblemType, ...]:
    return tuple(_BY_SLUG.values())


def problem_pages() -> APIRouter:
    """``GET /problems/{slug}``: the page a problem's ``type`` points to (not an API
    operation, so it stays out of the OpenAPI document)."""
    router = APIRouter(include_in_schema=False)

    @router.get(BASE + "{slug}", response_class=HTMLResponse)
    async def problem_page(slug: str) -> Response:
        found = _BY_SLUG.get(slug)
        if found is None:
            missing = problem_type(404)
            return JSONResponse({"type": missing.uri, "title": missing.title, "status": 404,
                                 "detail": "no such problem type", "problems": []},
                                status_code=404, media_type="application/problem+json")
        return HTMLResponse(
            f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(found.title)}"
            f"</title><h1>{html.escape(found.title)}</h1><p>{html.escape(found.explanation)}"
            f"</p><p>Problem type <code>{html.escape(found.uri)}</code> (RFC 9457).</p></html>")

    return router
