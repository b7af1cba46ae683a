"""The alert API and each team's live stream (and, from ``board``, the duty board).
``create_app(settings)``; nothing is built at import time.

Every call is made by a member of duty teams: a practitioner's token (``POST /v1/sign-in``
on the read API, or the board's sign-in, which sets a session cookie) or a team's dispatch
token (``joinedup team token``). A member sees and acts on their own teams' alerts only;
any other alert is 404, another team 403. A call that changes something and is
authenticated by the session cookie must carry the session's CSRF token
(``X-CSRF-Token``, or the board's hidden form field).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from services.alerts import actions
from services.alerts.bootstrap import DutySide, duty_side_running
from services.alerts.desk import DeskRefused, Filters, Listed, Member
from services.alerts.entrypoints import schemas as s
from services.alerts.stream import FeedEntry, Position
from services.common.http_api import (
    add_health,
    add_problem_handlers,
    documented_app,
    with_problem_models,
)
from services.common.settings import Settings
from services.common.validation import Problem
from services.ingest.entrypoints import schemas as problems
from services.ingest.entrypoints.errors import RedactedErrors
from services.ingest.entrypoints.publishing import problem_response
from services.reads import accounts
from services.reads.entrypoints import schemas as read_schemas
from services.reads.entrypoints.examples import REQUEST_EXAMPLES

SESSION_COOKIE = "joinedup_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

DESCRIPTION = """
The alerts of **your** duty teams: list them most urgent first, read one with its history
and explanation, acknowledge, assign, comment, snooze and resolve, and hold a team's live
stream open.

* Send `Authorization: Bearer <token>`: a practitioner's sign-in token, or your team's
  dispatch token (`joinedup team token`). The duty board uses a session cookie instead.
* Every action names the alert `version` it is based on. If somebody acted first you get
  **409** with the alert as it stands: look, then decide again. Nothing is lost.
* Alerts of other teams are not found (404); another team's list or stream is 403.
"""
_STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: problems.problem("missing, unknown, expired or revoked token",
                          {"WWW-Authenticate": "Bearer"}),
    400: problems.problem("the body is not readable JSON"),
    403: problems.problem("not one of your teams (or a missing CSRF token)"),
    404: problems.problem("no such alert among your teams'"),
    422: problems.problem("malformed: the problems name each field and why (never its value)"),
    503: problems.problem("the database is unavailable; retry",
                          {"Retry-After": "seconds to wait before retrying"}),
}
ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 409: problems.problem("somebody acted first (or the alert is resolved): the "
                                    "body's `current` is the alert as it stands")}
bearer = HTTPBearer(auto_error=False, description="a practitioner's token (jdr_...) or a "
                                                  "team's dispatch token (jdt_...)")
AlertId = Annotated[str, Path(description="the alert id", max_length=64)]


class Unauthenticated(Exception):
    pass


def create_app(settings: Settings, *, migrate: bool = True, timers: bool = True,
               clock: Callable[[], datetime] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        extra = {} if clock is None else {"clock": clock}
        async with duty_side_running(settings, migrate=migrate, timers=timers,
                                     **extra) as side:  # type: ignore[arg-type]
            app.state.side = side
            yield

    app = documented_app(title="joinedup duty teams", version="1", description=DESCRIPTION,
                  lifespan=lifespan, openapi_tags=[
                      {"name": "sign-in", "description": "practitioners' tokens"},
                      {"name": "alerts", "description": "your teams' alerts and the work "
                                                        "on them"},
                      {"name": "teams", "description": "your teams, their members and "
                                                       "their live streams"},
                      {"name": "operations", "description": "health"}])
    app.state.settings = settings
    app.include_router(_sign_in_routes())
    app.include_router(_alert_routes())
    app.include_router(_team_routes())
    from services.alerts.entrypoints.board import board_routes
    from services.alerts.entrypoints.pages import install_board
    app.include_router(board_routes())
    install_board(app)
    add_health(app, lambda request: side_of(request).pool)
    _add_error_handlers(app)
    app.add_middleware(RedactedErrors)
    # The same sign-in as the read API's; the actions' bodies carry their own examples.
    with_problem_models(app, s.StreamEntry,
                        request_examples={"signIn": REQUEST_EXAMPLES["signIn"]})
    return app


def side_of(request: Request) -> DutySide:
    side: DutySide = request.app.state.side
    return side


async def member(request: Request,
                 credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                 csrf: Annotated[str | None, Header(alias=CSRF_HEADER,
                                                    include_in_schema=False)] = None
                 ) -> Member:
    """Who is calling, from their token alone. A session cookie also needs the session's
    CSRF token on anything that changes state."""
    side = side_of(request)
    if credentials is not None:
        found = await side.member(credentials.credentials)
    else:
        session = request.cookies.get(SESSION_COOKIE)
        found = None if session is None else await side.member(session)
        if found is not None and request.method not in SAFE_METHODS and not side.csrf_ok(
                session or "", csrf):
            raise DeskRefused("forbidden", "the CSRF token is missing or wrong")
    if found is None:
        raise Unauthenticated()
    return found


Who = Annotated[Member, Depends(member)]


def _list_param(description: str) -> Any:
    return Query(description=description)


def _sign_in_routes() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["sign-in"], responses=ERRORS)

    @router.post("/sign-in", operation_id="signIn", response_model=read_schemas.Token,
                 responses={401: {"description": "unknown user, wrong password, disabled or "
                                                 "locked (one answer for all)"}})
    async def sign_in(body: read_schemas.SignIn, request: Request) -> read_schemas.Token:
        """A bearer token for a practitioner (the same accounts as the read API)."""
        side = side_of(request)
        async with side.pool.acquire() as conn:
            signed = await accounts.sign_in(conn, body.username, body.password, timedelta(
                seconds=side.settings.reads_token_lifetime_seconds))
        if signed is None:
            raise Unauthenticated()
        p = signed.practitioner
        return read_schemas.Token(
            access_token=signed.token, expires_at=signed.expires_at,
            practitioner=read_schemas.PractitionerOut(
                practitioner_id=p.practitioner_id, username=p.username, agency_id=p.agency_id,
                team_id=p.team_id, role=p.role))

    return router


def _alert_routes() -> APIRouter:
    router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=ERRORS)

    @router.get("", operation_id="listAlerts", response_model=s.AlertPage)
    async def list_alerts(
            who: Who, request: Request,
            team: Annotated[list[str] | None, _list_param("team ids (default: all yours)")
                            ] = None,
            status: Annotated[list[s.Status] | None, _list_param(
                "open, acknowledged, snoozed, resolved (default: all but resolved)")] = None,
            severity: Annotated[list[s.Severity] | None, _list_param(
                "critical, high, medium, low")] = None,
            rule: Annotated[list[str] | None, _list_param("rule ids")] = None,
            person: Annotated[str | None, Query(max_length=64, description=(
                "an opaque person id (never an identifier: those go in a body)"))] = None,
            cursor: Annotated[str | None, Query(max_length=400)] = None,
            limit: Annotated[int, Query(ge=1, le=200)] = 50) -> s.AlertPage:
        """Your teams' alerts, most urgent first: open before acknowledged before snoozed,
        then by severity, then the earliest deadline."""
        page = await side_of(request).desk.alerts(who, Filters(
            team or (), status or ["open", "acknowledged", "snoozed"], severity, rule,
            person), cursor, limit)
        return s.AlertPage(alerts=[s.AlertOut.of(a) for a in page.alerts],
                           next_cursor=page.next_cursor)

    @router.get("/{alert_id}", operation_id="getAlert", response_model=s.AlertDetailOut)
    async def get_alert(alert_id: AlertId, who: Who, request: Request) -> s.AlertDetailOut:
        """One alert with its explanation and its whole history."""
        return s.AlertDetailOut.of_detail(await side_of(request).desk.alert(who, alert_id))

    async def act(request: Request, who: Member, alert_id: str, action: actions.Action
                  ) -> s.AlertOut:
        side = side_of(request)
        after = await side.desk.act(who, alert_id, action)
        return s.AlertOut.of(Listed(after, await side.desk.team_name(after.team_id)))

    @router.post("/{alert_id}/acknowledgement", operation_id="acknowledgeAlert",
                 response_model=s.AlertOut, responses=ACTION_ERRORS)
    async def acknowledge(alert_id: AlertId, body: s.AcknowledgeIn, who: Who,
                          request: Request) -> s.AlertOut:
        """Take it: the team sees that somebody has it (and it will not escalate)."""
        return await act(request, who, alert_id, actions.Acknowledge(body.version))

    @router.post("/{alert_id}/assignment", operation_id="assignAlert",
                 response_model=s.AlertOut, responses=ACTION_ERRORS)
    async def assign(alert_id: AlertId, body: s.AssignIn, who: Who, request: Request
                     ) -> s.AlertOut:
        """Give it to a member of its team (or nobody)."""
        return await act(request, who, alert_id, actions.Assign(body.version, body.assignee))

    @router.post("/{alert_id}/comments", operation_id="commentOnAlert",
                 response_model=s.AlertOut, responses=ACTION_ERRORS)
    async def comment(alert_id: AlertId, body: s.CommentIn, who: Who, request: Request
                      ) -> s.AlertOut:
        """Add a note to its history (kept sealed with the person's data key)."""
        return await act(request, who, alert_id, actions.Comment(body.version, body.text))

    @router.post("/{alert_id}/snooze", operation_id="snoozeAlert",
                 response_model=s.AlertOut, responses=ACTION_ERRORS)
    async def snooze(alert_id: AlertId, body: s.SnoozeIn, who: Who, request: Request
                     ) -> s.AlertOut:
        """Put it aside until a time (within 30 days): it comes back open then."""
        return await act(request, who, alert_id, actions.Snooze(body.version, body.until))

    @router.post("/{alert_id}/resolution", operation_id="resolveAlert",
                 response_model=s.AlertOut, responses=ACTION_ERRORS)
    async def resolve(alert_id: AlertId, body: s.ResolveIn, who: Who, request: Request
                      ) -> s.AlertOut:
        """Close it with an outcome (and a note)."""
        return await act(request, who, alert_id,
                         actions.Resolve(body.version, body.outcome, body.note))

    return router


def _team_routes() -> APIRouter:
    router = APIRouter(prefix="/v1/teams", tags=["teams"], responses=ERRORS)

    @router.get("", operation_id="listMyTeams", response_model=list[s.TeamOut])
    async def my_teams(who: Who, request: Request) -> list[s.TeamOut]:
        """The teams you work in."""
        return [s.TeamOut(**dict(r)) for r in await side_of(request).desk.teams(who)]

    @router.get("/{team_id:path}/members", operation_id="listTeamMembers",
                response_model=list[str])
    async def members(team_id: str, who: Who, request: Request) -> list[str]:
        """The usernames an alert of the team can be assigned to."""
        return await side_of(request).desk.members(who, team_id)

    @router.get("/{team_id:path}/stream", operation_id="streamTeamAlerts",
                response_class=EventSourceResponse, responses={200: {
                    "description": "server-sent events, one per alert event that reached "
                                   "(or left) the team; `id` resumes (Last-Event-ID), "
                                   "`event` is the action, `data` a StreamEntry",
                    "content": {"text/event-stream": {"schema": {
                        "$ref": "#/components/schemas/StreamEntry"}}}}})
    async def stream(team_id: str, who: Who, request: Request,
                     last_event_id: Annotated[str | None, Header(
                         alias="Last-Event-ID", max_length=64)] = None) -> Response:
        """The team's live stream. Reconnect with `Last-Event-ID` to get what you missed;
        without it the stream starts now."""
        if team_id not in who.teams:
            raise DeskRefused("forbidden", "not one of your teams")
        after = None
        if last_event_id:
            after = Position.parse(last_event_id)
            if after is None:
                raise DeskRefused("invalid", "Last-Event-ID is not one this stream sent")
        side = side_of(request)
        return EventSourceResponse(_events(side, who, frozenset([team_id]), after),
                                   ping=15, send_timeout=30)

    return router


async def _events(side: DutySide, who: Member, teams: frozenset[str], after: Position | None
                  ) -> AsyncIterator[ServerSentEvent]:
    async for entry in side.feed.follow(teams, after):
        yield ServerSentEvent(data=json.dumps(await _entry(side, who, entry), default=str),
                              event=entry.action, id=entry.position.event_id)


async def _entry(side: DutySide, who: Member, entry: FeedEntry) -> dict[str, Any]:
    try:
        alert: dict[str, Any] | None = s.AlertOut.of(
            await side.desk.summary(who, entry.alert_id)).model_dump(mode="json")
    except DeskRefused:  # it left the team (escalated): the entry says so, nothing more
        alert = None
    return s.StreamEntry(alert_id=entry.alert_id, team_id=entry.team_id, action=entry.action,
                         version=entry.version, recorded_at=entry.recorded_at,
                         alert=None).model_dump(mode="json") | {"alert": alert}


def refusal_response(exc: DeskRefused) -> Response:
    response = problem_response(_STATUS[exc.kind], [Problem("request", exc.reason, exc.kind)])
    if exc.kind == "conflict" and exc.alert is not None:
        body = json.loads(bytes(response.body))
        body["current"] = s.AlertOut.of(Listed(exc.alert, None)).model_dump(mode="json")
        return JSONResponse(body, status_code=409, media_type=problems.PROBLEM_JSON)
    return response


def _add_error_handlers(app: FastAPI) -> None:
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DeskRefused)
        return refusal_response(exc)

    async def unauthenticated(request: Request, exc: Exception) -> Response:
        return problem_response(401, [Problem("authorization", "a working token is required",
                                              "unauthenticated")], "Unauthorized",
                                {"WWW-Authenticate": "Bearer"})

    add_problem_handlers(app)
    app.add_exception_handler(DeskRefused, refused)
    app.add_exception_handler(Unauthenticated, unauthenticated)
