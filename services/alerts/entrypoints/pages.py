"""What every page of the duty board shares: times as people in England read them, the
signed-in session (the session cookie holds a practitioner's ``jdr_`` token; a page without
one sends the browser to sign in), rendering with the page headers (a strict
Content-Security-Policy: no inline script or style; no framing; no referrer), and signing
in and out (with a login-CSRF cookie checked against the form's hidden field).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined

from services.alerts.actions import OUTCOMES
from services.alerts.desk import Member
from services.alerts.entrypoints.http import SESSION_COOKIE, side_of
from services.reads import accounts

log = structlog.get_logger("joinedup.board")

LONDON: Final = ZoneInfo("Europe/London")
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                  "Nov", "Dec")
#: the login-CSRF cookie: set with the sign-in form, checked against its hidden field
SIGN_IN_COOKIE: Final = "joinedup_sign_in"
PAGE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
        "frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

# --- times as people in England read them ---------------------------------------------------

def london(at: datetime | None) -> str:
    """``Sun 6 Dec 2026 14:05 GMT``: the moment in Europe/London, with the zone in force."""
    if at is None:
        return ""
    local = at.astimezone(LONDON)
    return (f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year} "
            f"{local:%H:%M} {local.tzname()}")


def london_input(at: datetime) -> str:
    """The value of a ``datetime-local`` control showing ``at`` in London."""
    return at.astimezone(LONDON).strftime("%Y-%m-%dT%H:%M")


def from_london_input(text: str) -> datetime:
    """A ``datetime-local`` value, read as London wall-clock time (ValueError if not one)."""
    at = datetime.fromisoformat(text.strip())
    return at.replace(tzinfo=LONDON) if at.tzinfo is None else at


def day(on: date) -> str:
    """``6 Dec 2026``."""
    return f"{on.day} {_MONTHS[on.month - 1]} {on.year}"


def duration(delta: timedelta) -> str:
    """``3 days 4 h``, ``2 h 5 min``, ``12 min``: how long, to the minute."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    words = f"{days} day{'' if days == 1 else 's'}"
    return f"{words} {hours} h" if hours else words


# --- pages ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Session:
    token: str
    member: Member
    csrf: str


class SignInNeeded(Exception):
    def __init__(self, then: str) -> None:
        super().__init__("sign in first")
        self.then = then


def templates() -> Environment:
    env = Environment(loader=PackageLoader("services.alerts", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(london=london, duration=duration, day=day,
                       short=lambda value: str(value)[:8])
    env.globals.update(outcomes=OUTCOMES, board_url=board_url)
    return env


def render(request: Request, name: str, status: int = 200,
           session: Session | None = None, **context: Any) -> HTMLResponse:
    env: Environment = request.app.state.board_templates
    html = env.get_template(name).render(session=session, now=side_of(request).clock(),
                                         **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)


def refused(request: Request, session: Session | None, status: int, message: str
            ) -> HTMLResponse:
    return render(request, "refused.html.j2", status, session, status_code=status,
                  message=message)


async def current_session(request: Request) -> Session | None:
    """The practitioner signed in with the session cookie (a team's dispatch token is for
    the API, not the board)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    side = side_of(request)
    member = await side.member(token)
    if member is None or member.caller is None:
        return None
    return Session(token, member, side.csrf_token(token))


async def page_session(request: Request) -> Session:
    found = await current_session(request)
    if found is None:  # back to the page after signing in (a form post: to the board)
        then = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(then if request.method == "GET" else "/board")
    return found


Signed = Annotated[Session, Depends(page_session)]


def local_path(then: str | None) -> str:
    """Where to go after signing in: a path on this site only."""
    if (not then or not then.startswith("/") or then.startswith("//") or "\\" in then
            or any(c.isspace() or not c.isprintable() for c in then)):
        return "/board"
    return then


def board_url(team: str) -> str:
    return "/board?" + urlencode({"team": team})


def install_board(app: FastAPI) -> None:
    """The board's own stylesheet and script, served locally (no CDN); its templates; and
    the sign-in redirect every page falls back on."""
    app.mount("/static", StaticFiles(packages=[("services.alerts", "static")]),
              name="board-static")
    app.state.board_templates = templates()

    async def sign_in_first(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInNeeded)
        return redirect("/sign-in?" + urlencode({"next": local_path(exc.then)}))

    app.add_exception_handler(SignInNeeded, sign_in_first)

# --- signing in and out --------------------------------------------------------------------

def sign_in_routes(router: APIRouter) -> None:
    @router.get("/")
    async def home(request: Request) -> Response:
        return redirect("/board" if await current_session(request) else "/sign-in")

    def form(request: Request, then: str, status: int = 200, message: str | None = None
             ) -> Response:
        pre = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
        response = render(request, "sign_in.html.j2", status, then=then, message=message,
                          csrf=side_of(request).csrf_token("sign-in|" + pre))
        response.set_cookie(SIGN_IN_COOKIE, pre, max_age=3600, path="/sign-in",
                            secure=side_of(request).settings.duty_cookie_secure,
                            httponly=True, samesite="strict")
        return response

    @router.get("/sign-in")
    async def sign_in_form(request: Request, next: Annotated[str | None, Query(
            max_length=500)] = None) -> Response:
        if await current_session(request) is not None:
            return redirect(local_path(next))
        return form(request, local_path(next))

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        side = side_of(request)
        fields = await request.form()
        then = local_path(text_field(fields, "next"))
        pre = request.cookies.get(SIGN_IN_COOKIE)
        if not pre or not side.csrf_ok("sign-in|" + pre, text_field(fields, "csrf_token")):
            return form(request, then, 403, "The sign-in form had expired. Please try again.")
        lifetime = timedelta(seconds=side.settings.reads_token_lifetime_seconds)
        async with side.pool.acquire() as conn:
            signed = await accounts.sign_in(conn, text_field(fields, "username")[:64],
                                            text_field(fields, "password")[:1024], lifetime)
        if signed is None:
            log.info("board sign-in refused")
            return form(request, then, 200, "The username or password is not right, or the "
                                            "account is locked for a while.")
        response = redirect(then)
        max_age = int((signed.expires_at - side.clock()).total_seconds())
        response.set_cookie(SESSION_COOKIE, signed.token, max_age=max(60, max_age), path="/",
                            secure=side.settings.duty_cookie_secure, httponly=True,
                            samesite="strict")
        response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request, session: Signed) -> Response:
        side = side_of(request)
        if not side.csrf_ok(session.token, text_field(await request.form(), "csrf_token")):
            return refused(request, session, 403, "The form had no valid CSRF token: nothing "
                                                  "was done. Go back, reload and try again.")
        async with side.pool.acquire() as conn:
            await accounts.sign_out(conn, session.token)
        response = redirect("/sign-in")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def text_field(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    return value if isinstance(value, str) else ""
