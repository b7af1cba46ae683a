"""The read API: a person's records as the reader may see them, and the governance actions
that change who may see what. ``create_app(settings)``; nothing is built at import time.

Every call is made as someone: a practitioner's token from ``POST /v1/sign-in``, or an
agency's own credentials (``joinedup agency create``), which read as that agency. Every
read and action is audited, with the purpose the caller gives.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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
from services.reads.bootstrap import ReadSide, read_side_running
from services.reads.domain.audit import Caller
from services.reads.domain.governance import (
    AccessGranted,
    AccessRevoked,
    ConsentGiven,
    ConsentWithdrawn,
    EntryDisclosed,
    EpisodeClosed,
    EpisodeOpened,
    Payload,
)
from services.reads.entrypoints import schemas as s
from services.reads.entrypoints.examples import REQUEST_EXAMPLES
from services.reads.lookup import ReadRefused

DESCRIPTION = """
A person's cross-agency records, as **you** may see them.

* Sign in with `POST /v1/sign-in` (a practitioner) and send `Authorization: Bearer <token>`,
  or use your agency's own credentials (an agency system reads as its agency).
* Find a person with `POST /v1/people/search` (identifiers travel in the body, never in a
  URL), then read by their opaque `person_id`.
* Entries you may not see are listed as **Confidential**, with their date and the kind of
  service that recorded them, never their content: ask that service.
* Every read and action is recorded in the access audit with the `purpose` you give.
"""

_STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422,
           "unavailable": 503}  # 503: problem_response adds Retry-After
#: What any call may answer besides its success (RFC 9457 problem details).
ERRORS: dict[int | str, dict[str, Any]] = {
    401: problems.problem("missing, unknown, expired or revoked token",
                          {"WWW-Authenticate": "Bearer"}),
    400: problems.problem("the body is not readable JSON"),
    403: problems.problem("the caller may not do this"),
    404: problems.problem("no such person (or item)"),
    422: problems.problem("malformed: the problems name each field and why (never its value)"),
    503: problems.problem("the database is unavailable; retry",
                          {"Retry-After": "seconds to wait before retrying"}),
}
bearer = HTTPBearer(auto_error=False, description="a practitioner's token (jdr_...) or an "
                                                  "agency credential (jdu_...)")
PersonId = Annotated[uuid.UUID, Path(description="the opaque person id")]
Purpose = Annotated[s.Purpose, Query(description="why you are reading (recorded in the audit)")]
LocalId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


def create_app(settings: Settings, *, migrate: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with read_side_running(settings, migrate=migrate) as side:
            app.state.side = side
            yield

    app = documented_app(title="joinedup read API", version="1", description=DESCRIPTION,
                  lifespan=lifespan, openapi_tags=[
                      {"name": "sign-in", "description": "practitioners' tokens"},
                      {"name": "people", "description": "a person's records, filtered for "
                                                        "the reader and audited"},
                      {"name": "governance", "description": "consent, coordination "
                       "episodes, the lead professional's grants, disclosures"},
                      {"name": "operations", "description": "health, and for operations staff: dead "
                       "letters, rule what-if, explain, point-in-time views"}])
    app.state.settings = settings
    app.include_router(_sign_in_routes())
    app.include_router(_people_routes())
    app.include_router(_governance_routes())
    from services.operations.entrypoints.http import operations_routes  # needs `caller` above

    for router in operations_routes():
        app.include_router(router)
    add_health(app, lambda request: _side(request).pool)
    _add_error_handlers(app)
    app.add_middleware(RedactedErrors)
    with_problem_models(app, request_examples=REQUEST_EXAMPLES)
    return app


def _side(request: Request) -> ReadSide:
    side: ReadSide = request.app.state.side
    return side


async def caller(request: Request,
                 credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
                 ) -> Caller:
    """Who is calling, from their token alone: nothing in the request can say otherwise."""
    found = None
    if credentials is not None:
        found = await _side(request).caller(credentials.credentials)
    if found is None:
        raise ReadRefused("unauthenticated", "a working bearer token is required")
    return found


Who = Annotated[Caller, Depends(caller)]


def _sign_in_routes() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["sign-in"], responses=ERRORS)

    @router.post("/sign-in", operation_id="signIn", response_model=s.Token,
                 responses={401: {"description": "unknown user, wrong password, disabled or "
                                                 "locked (one answer for all)"}})
    async def sign_in(body: s.SignIn, request: Request) -> s.Token:
        """A bearer token for a practitioner (10 failures in a row lock the account for
        15 minutes)."""
        side = _side(request)
        lifetime = timedelta(seconds=side.settings.reads_token_lifetime_seconds)
        async with side.pool.acquire() as conn:
            signed = await accounts.sign_in(conn, body.username, body.password, lifetime)
        if signed is None:
            raise ReadRefused("unauthenticated", "sign-in refused")
        p = signed.practitioner
        return s.Token(access_token=signed.token, expires_at=signed.expires_at,
                       practitioner=s.PractitionerOut(
                           practitioner_id=p.practitioner_id, username=p.username,
                           agency_id=p.agency_id, team_id=p.team_id, role=p.role))

    @router.post("/sign-out", operation_id="signOut", status_code=204)
    async def sign_out(who: Who, request: Request,
                       credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
                       ) -> Response:
        """End this token's session."""
        if credentials is not None and who.kind == "practitioner":
            async with _side(request).pool.acquire() as conn:
                await accounts.sign_out(conn, credentials.credentials)
        return Response(status_code=204)

    return router


def _people_routes() -> APIRouter:
    router = APIRouter(prefix="/v1/people", tags=["people"], responses=ERRORS)

    @router.post("/search", operation_id="findPerson", response_model=s.PersonFound,
                 responses={404: {"description": "nobody holds that identifier"}})
    async def search(body: s.IdentifierSearch, who: Who, request: Request,
                     purpose: Purpose) -> s.PersonFound:
        """The person holding an identifier (any scheme)."""
        person = await _side(request).reads.search(who, body.scheme, body.value, purpose)
        return s.PersonFound(person_id=person)

    @router.get("/{person_id}", operation_id="getPerson", response_model=s.PersonSummary)
    async def summary(person_id: PersonId, who: Who, request: Request, purpose: Purpose
                      ) -> s.PersonSummary:
        """Who works with the person now, and their lead professional."""
        found = await _side(request).reads.summary(who, str(person_id), purpose)
        lead = found.lead_professional
        return s.PersonSummary(
            person_id=found.person_id,
            lead_professional=None if lead is None else s.LeadProfessionalOut(
                practitioner_id=lead.practitioner_id, username=lead.username,
                agency_id=lead.agency_id, team_id=lead.team_id, episode_id=lead.episode_id,
                since=lead.since),
            caseload=[s.item(s.CaseloadItemOut, x) for x in found.caseload],
            governance=found.governance)

    @router.get("/{person_id}/timeline", operation_id="getTimeline",
                response_model=s.TimelinePage)
    async def timeline(person_id: PersonId, who: Who, request: Request, purpose: Purpose,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50,
                       cursor: Annotated[str | None, Query(max_length=400)] = None
                       ) -> s.TimelinePage:
        """The person's timeline across agencies, oldest first, a page at a time."""
        page = await _side(request).reads.timeline(who, str(person_id), purpose, limit, cursor)
        return s.TimelinePage(items=[s.item(s.TimelineEntryOut, x) for x in page.items],
                              next_cursor=page.next_cursor)

    @router.get("/{person_id}/referrals", operation_id="getReferrals",
                response_model=s.Referrals)
    async def referrals(person_id: PersonId, who: Who, request: Request, purpose: Purpose
                        ) -> s.Referrals:
        """Every referral about the person, with its closed-loop state."""
        found = await _side(request).reads.referrals(who, str(person_id), purpose)
        return s.Referrals(items=[s.item(s.ReferralOut, x) for x in found])

    @router.get("/{person_id}/expectations", operation_id="getOpenExpectations",
                response_model=s.Expectations)
    async def expectations(person_id: PersonId, who: Who, request: Request,
                           purpose: Purpose) -> s.Expectations:
        """What the rules are waiting for, and by when."""
        found = await _side(request).reads.expectations(who, str(person_id), purpose)
        return s.Expectations(items=[s.item(s.ExpectationOut, x) for x in found])

    @router.get("/{person_id}/alerts", operation_id="getPersonAlerts", response_model=s.Alerts)
    async def alerts(person_id: PersonId, who: Who, request: Request, purpose: Purpose
                     ) -> s.Alerts:
        """The alerts raised about the person, open and resolved."""
        found = await _side(request).reads.alerts(who, str(person_id), purpose)
        return s.Alerts(items=[s.item(s.AlertOut, x) for x in found])

    @router.get("/{person_id}/access-log", operation_id="getAccessLog",
                response_model=s.AccessLog)
    async def access_log(person_id: PersonId, who: Who, request: Request, purpose: Purpose
                         ) -> s.AccessLog:
        """Who read or acted on the person's records (information governance staff only)."""
        if who.reader.role != "information_governance":
            raise ReadRefused("forbidden", "the access log is for information governance")
        found = await _side(request).reads.access_log(who, str(person_id), purpose)
        return s.AccessLog(items=found)

    return router


def _governance_routes() -> APIRouter:
    router = APIRouter(prefix="/v1/people/{person_id}", tags=["governance"])
    created: dict[int | str, dict[str, Any]] = {
        **ERRORS,
        201: {"description": "recorded: in effect from the next read"},
               409: {"description": "refused given what is recorded (the reason says why)"}}

    async def record(request: Request, who: Who, person_id: uuid.UUID, payload: Payload
                     ) -> s.Recorded:
        event = await _side(request).reads.record(who, str(person_id), payload)
        first = next(iter(type(payload).__dataclass_fields__))  # the payload's own id
        return s.Recorded(event_id=event.event_id, event_type=event.event_type,
                          recorded_at=event.recorded_at, id=getattr(payload, first))

    @router.post("/consents", operation_id="recordConsent", status_code=201,
                 response_model=s.Recorded, responses=created)
    async def consent(person_id: PersonId, body: s.ConsentIn, who: Who, request: Request
                      ) -> s.Recorded:
        """The person's consent to share, with its scope, period and kind."""
        starts = body.starts or _side(request).reads.now()
        return await record(request, who, person_id, ConsentGiven(
            str(uuid.uuid4()), frozenset(body.agencies), frozenset(body.categories), starts,
            body.expires, body.kind))

    @router.post("/consents/{consent_id}/withdrawal", operation_id="withdrawConsent",
                 status_code=201, response_model=s.Recorded, responses=created)
    async def withdraw(person_id: PersonId, consent_id: LocalId, who: Who, request: Request
                       ) -> s.Recorded:
        """The person withdraws a consent: it stops opening anything from the next read."""
        return await record(request, who, person_id, ConsentWithdrawn(consent_id))

    @router.post("/episodes", operation_id="openEpisode", status_code=201,
                 response_model=s.Recorded, responses=created)
    async def open_episode(person_id: PersonId, body: s.EpisodeIn, who: Who,
                           request: Request) -> s.Recorded:
        """Open a coordination episode; its coordinator (you, or the practitioner named) is
        the lead professional. One at a time per person."""
        coordinator = await _side(request).practitioner(body.coordinator, who)
        return await record(request, who, person_id, EpisodeOpened(
            str(uuid.uuid4()), coordinator.practitioner_id, coordinator.agency_id,
            coordinator.team_id))

    @router.post("/episodes/{episode_id}/closure", operation_id="closeEpisode",
                 status_code=201, response_model=s.Recorded, responses=created)
    async def close_episode(person_id: PersonId, episode_id: LocalId, who: Who,
                            request: Request) -> s.Recorded:
        """Close the open episode (the lead professional): its grants lapse."""
        return await record(request, who, person_id, EpisodeClosed(episode_id))

    @router.post("/grants", operation_id="grantAccess", status_code=201,
                 response_model=s.Recorded, responses=created)
    async def grant(person_id: PersonId, body: s.GrantIn, who: Who, request: Request
                    ) -> s.Recorded:
        """The lead professional lets a named practitioner, or a team, see the person's
        restricted entries while the episode is open."""
        side = _side(request)
        practitioner = None
        if body.practitioner is not None:
            practitioner = (await side.practitioner(body.practitioner, who)).practitioner_id
        episode = await side.reads.open_episode_id(str(person_id))
        return await record(request, who, person_id, AccessGranted(
            str(uuid.uuid4()), episode or "", practitioner, body.team_id))

    @router.post("/grants/{grant_id}/revocation", operation_id="revokeAccess",
                 status_code=201, response_model=s.Recorded, responses=created)
    async def revoke(person_id: PersonId, grant_id: LocalId, who: Who, request: Request
                     ) -> s.Recorded:
        """Revoke a grant: from the next read it opens nothing."""
        return await record(request, who, person_id, AccessRevoked(grant_id))

    @router.post("/disclosures", operation_id="discloseEntry", status_code=201,
                 response_model=s.Recorded, responses=created)
    async def disclose(person_id: PersonId, body: s.DisclosureIn, who: Who, request: Request
                       ) -> s.Recorded:
        """Share one of your agency's entries with one other agency, case by case, with the
        legal basis and the reason."""
        return await record(request, who, person_id, EntryDisclosed(
            str(uuid.uuid4()), who.reader.agency, body.entry_event_id, body.to_agency,
            body.legal_basis, body.reason))

    return router


def _add_error_handlers(app: FastAPI) -> None:
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ReadRefused)
        if exc.kind == "unauthenticated":
            return problem_response(401, [Problem("authorization", exc.message,
                                                  "unauthenticated")], "Unauthorized",
                                    {"WWW-Authenticate": "Bearer"})
        return problem_response(_STATUS[exc.kind], [Problem("request", exc.message,
                                                            exc.kind)])

    add_problem_handlers(app)
    app.add_exception_handler(ReadRefused, refused)


