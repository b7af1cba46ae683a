"""The duty board: server-rendered pages over the duty desk, for practitioners in a browser.

A practitioner signs in with the form (the session cookie holds their ``jdr_`` token), sees
their team's working alerts most urgent first (kept live by ``static/board.js`` over the
team's stream, which fetches the rows again from ``/board/rows``), opens an alert with its
explanation, history and the person's consent-filtered timeline, and acts on it with plain
forms. Every form carries the session's CSRF token and the alert version it was based on;
somebody else's action first gives the page again, as the alert stands, with 409.

What every page shares (times in Europe/London, the session, rendering with a strict
Content-Security-Policy, signing in and out) is ``pages.py``; the panel view is ``panel.py``.
Nothing here logs personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.alerts import actions
from services.alerts.desk import DeskRefused, Filters, Member
from services.alerts.entrypoints.http import side_of
from services.alerts.entrypoints.pages import (
    PAGE_HEADERS,
    Session,
    Signed,
    current_session,
    from_london_input,
    london_input,
    redirect,
    refused,
    render,
    sign_in_routes,
    text_field,
)
from services.alerts.events import ALERT_ACTIONS
from services.reads.domain.views import Shown
from services.reads.lookup import ReadRefused
from services.reads.service import PersonReads

log = structlog.get_logger("joinedup.board")

WORKING: Final = ("open", "acknowledged", "snoozed")
BOARD_LIMIT: Final = 1000  # a team's whole working set, in practice
#: why the board reads a person's records (services/reads/domain/audit.py PURPOSES)
ALERT_PURPOSE: Final = "duty_alert"
PERSON_PURPOSE: Final = "care_coordination"
ACTIONS: Final = ("acknowledge", "assign", "comment", "snooze", "resolve")
_DONE: Final = {"acknowledge": "Acknowledged: the team can see you have it.",
                "assign": "Assignment saved.", "comment": "Comment added.",
                "snooze": "Snoozed: it comes back open at the time you gave.",
                "resolve": "Resolved."}
def board_routes() -> APIRouter:
    from services.alerts.entrypoints.panel import panel_routes

    router = APIRouter(include_in_schema=False)
    sign_in_routes(router)
    _board(router)
    _alert(router)
    _person(router)
    router.include_router(panel_routes())
    return router

# --- the board -----------------------------------------------------------------------------

def _board(router: APIRouter) -> None:
    async def rows_of(request: Request, member: Member, team: str) -> dict[str, Any]:
        page = await side_of(request).desk.alerts(member, Filters(teams=[team],
                                                                  status=WORKING),
                                                  limit=BOARD_LIMIT)
        return {"alerts": [listed.alert for listed in page.alerts],
                "more": page.next_cursor is not None}

    @router.get("/board")
    async def board(request: Request, session: Signed, team: Annotated[
            str | None, Query(max_length=200)] = None) -> Response:
        teams = await side_of(request).desk.teams(session.member)
        if not teams:
            return render(request, "board.html.j2", session=session, teams=[], team=None,
                          alerts=[], more=False)
        chosen = team or teams[0]["team_id"]
        if chosen not in session.member.teams:
            return refused(request, session, 403, "That board is not one of your teams'.")
        return render(request, "board.html.j2", session=session, teams=teams,
                      team=next(t for t in teams if t["team_id"] == chosen),
                      stream_url=f"/v1/teams/{quote(chosen, safe='/')}/stream",
                      rows_url="/board/rows?" + urlencode({"team": chosen}),
                      actions=" ".join(ALERT_ACTIONS),
                      **await rows_of(request, session.member, chosen))

    @router.get("/board/rows")
    async def rows(request: Request, team: Annotated[str, Query(max_length=200)]
                   ) -> Response:
        """The board's table body alone: what board.js swaps in on each stream event."""
        session = await current_session(request)
        if session is None:
            return Response("signed out", status_code=401, headers=PAGE_HEADERS)
        if team not in session.member.teams:
            return Response("not one of your teams", status_code=403, headers=PAGE_HEADERS)
        return render(request, "rows.html.j2", session=session,
                      **await rows_of(request, session.member, team))


# --- one alert and the work on it ----------------------------------------------------------

def _alert(router: APIRouter) -> None:
    @router.get("/board/alerts/{alert_id}")
    async def alert(request: Request, alert_id: str, session: Signed,
                    done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
        return await alert_page(request, session, alert_id, notice=_DONE.get(done or ""))

    @router.post("/board/alerts/{alert_id}/{action}")
    async def act(request: Request, alert_id: str, action: str, session: Signed) -> Response:
        side = side_of(request)
        fields = await request.form()
        if not side.csrf_ok(session.token, text_field(fields, "csrf_token")):
            return refused(request, session, 403, "The form had no valid CSRF token: nothing "
                                                  "was done. Go back, reload and try again.")
        if action not in ACTIONS:
            return refused(request, session, 404, "There is no such action.")
        try:
            decided = _action(action, fields)
        except ValueError as exc:
            return await alert_page(request, session, alert_id, 422, problem=str(exc))
        try:
            await side.desk.act(session.member, alert_id, decided)
        except DeskRefused as exc:
            if exc.kind == "conflict":
                return await alert_page(
                    request, session, alert_id, 409, problem=(
                        "Somebody else acted first; here is the alert as it stands now. "
                        f"Nothing you sent was saved ({exc.reason})."))
            if exc.kind == "invalid":
                return await alert_page(request, session, alert_id, 422, problem=exc.reason)
            return refused(request, session, 404, "There is no such alert among your teams'.")
        return redirect(f"/board/alerts/{quote(alert_id)}?done={action}")


def _action(action: str, fields: Mapping[str, Any]) -> actions.Action:
    """The action a board form asks for (ValueError, with words to show, if malformed)."""
    try:
        version = int(text_field(fields, "version"))
    except ValueError:
        raise ValueError("The form did not say which version of the alert it was based "
                         "on. Reload the page and try again.") from None
    match action:
        case "acknowledge":
            return actions.Acknowledge(version)
        case "assign":
            return actions.Assign(version, text_field(fields, "assignee") or None)
        case "comment":
            return actions.Comment(version, text_field(fields, "text"))
        case "snooze":
            try:
                until = from_london_input(text_field(fields, "until"))
            except ValueError:
                raise ValueError("Give the date and time to snooze until.") from None
            return actions.Snooze(version, until)
        case _:
            return actions.Resolve(version, text_field(fields, "outcome"),
                                   text_field(fields, "note").strip() or None)


async def alert_page(request: Request, session: Session, alert_id: str, status: int = 200,
                     problem: str | None = None, notice: str | None = None) -> Response:
    side = side_of(request)
    try:
        detail = await side.desk.alert(session.member, alert_id)
    except DeskRefused:
        return refused(request, session, 404, "There is no such alert among your teams'.")
    alert = detail.alert
    members = (await side.desk.members(session.member, alert.team_id)
               if alert.team_id in session.member.teams else [])
    timeline, withheld = await _timeline(side.reads, session, alert.person_key)
    now = side.clock()
    return render(request, "alert.html.j2", status, session, detail=detail, alert=alert,
                  members=members, timeline=timeline, timeline_missing=withheld,
                  problem=problem, notice=notice, snooze_min=london_input(now),
                  snooze_max=london_input(now + actions.MAX_SNOOZE),
                  snooze_default=london_input(now + timedelta(hours=4)))


async def _timeline(reads: PersonReads, session: Session, person_id: str
                    ) -> tuple[list[Shown], bool]:
    caller = session.member.caller
    assert caller is not None  # a board session is a practitioner's
    try:
        page = await reads.timeline(caller, person_id, ALERT_PURPOSE, limit=50)
    except ReadRefused:
        return [], True
    return page.items, False


# --- a person's records, as the read path shows them to the reader -------------------------

def _person(router: APIRouter) -> None:
    @router.get("/board/people/{person_id}")
    async def person(request: Request, person_id: str, session: Signed,
                     after: Annotated[str | None, Query(max_length=400)] = None) -> Response:
        reads = side_of(request).reads
        caller = session.member.caller
        assert caller is not None  # a board session is a practitioner's
        try:
            summary = await reads.summary(caller, person_id, PERSON_PURPOSE)
            alerts = await reads.alerts(caller, person_id, PERSON_PURPOSE)
            timeline = await reads.timeline(caller, person_id, PERSON_PURPOSE, limit=100,
                                            cursor=after)
        except ReadRefused as exc:
            if exc.kind == "invalid":
                return refused(request, session, 422, "That link to later entries is not "
                                                      "one this board gave.")
            return refused(request, session, 404, "There is no such person.")
        return render(request, "person.html.j2", session=session, summary=summary,
                      alerts=alerts, timeline=timeline.items, more=timeline.next_cursor)
