"""The multi-agency panel view: an agenda a panel chair can work down for an area.

A panel (a MARAC, a complex-needs or a homelessness panel) is multi-agency, so the view
takes in every team's alerts whose trigger happened in the area, not only the reader's own:
each person with an alert still being worked there, or with more than one alert there in
the last 90 days, longest open gap first. A row names the person only by their opaque id
(a link to their record page, which the read path filters by consent) and shows what each
gap is about, which team works it, the lead professional and how long it has been open.

What a row says about an alert is what the reader may see of it: in full if one of the
reader's teams works it (it is on their board already), otherwise as the read path decides
for the reader (``PersonReads.alerts``, an audited read, purpose care coordination), and
"Confidential" when it withholds it, so the chair knows to ask rather than never knowing.
The lead professional is shown unless the service behind it reveals a restricted category
(a drug service, a mental health team), as for the caseload. The chart counts the open
gaps by what the rows show (a withheld rule counts as "Confidential"), in four age bands.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from projections.queries import panel as sql
from services.alerts.bootstrap import DutySide
from services.alerts.entrypoints.http import side_of
from services.alerts.entrypoints.pages import (
    LONDON,
    PAGE_HEADERS,
    Session,
    Signed,
    duration,
    refused,
    render,
)
from services.reads.domain.views import service_category
from services.reads.domain.visibility import CONFIDENTIAL, RESTRICTED, Reader
from services.reads.lookup import ReadRefused

AREA: Final = re.compile(r"^[EKNSW]\d{8}$")
REPEATED_WITHIN: Final = timedelta(days=90)
MAX_PEOPLE: Final = 500
PANEL_PURPOSE: Final = "care_coordination"
#: the age bands of the chart: (label, up to and excluding)
BANDS: Final = (("under 1 day", timedelta(days=1)), ("1 to 3 days", timedelta(days=3)),
                ("3 to 7 days", timedelta(days=7)), ("over 7 days", timedelta.max))


@dataclass(frozen=True, slots=True)
class Gap:
    alert_id: str
    label: str                 # the rule's title, or "Confidential"
    team: str | None           # the team working it (None when withheld)
    severity: str | None
    status: str
    raised_at: datetime
    open_for: timedelta

    @property
    def confidential(self) -> bool:
        return self.label == CONFIDENTIAL


@dataclass(frozen=True, slots=True)
class PanelRow:
    person_id: str
    gaps: list[Gap]            # the alerts being worked, longest open first
    rules: list[str]           # what every listed alert (working or recent) is about
    teams: list[str]
    lead: str | None
    recent: int                # alerts in the area in the last 90 days

    @property
    def longest(self) -> timedelta | None:
        return self.gaps[0].open_for if self.gaps else None

    @property
    def repeated(self) -> bool:
        return self.recent > 1


@dataclass(frozen=True, slots=True)
class Segment:
    band: int
    x: float
    width: float
    count: int


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    counts: tuple[int, ...]
    segments: list[Segment] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts)


def band(open_for: timedelta) -> int:
    return next(i for i, (_, below) in enumerate(BANDS) if open_for < below)


def agenda(rows: Iterable[Mapping[str, Any]], visible: Callable[[Mapping[str, Any]], bool],
           leads: Mapping[str, str], now: datetime, since: datetime) -> list[PanelRow]:
    """The panel's rows from its alerts (in the query's order: person by person, longest
    open gap first), showing of each alert only what ``visible`` allows."""
    people: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        people.setdefault(row["person_key"], []).append(row)
    out = []
    for person, alerts in people.items():
        gaps, rules, teams = [], [], []
        for a in alerts:
            shown = visible(a)
            label = a["title"] if shown else CONFIDENTIAL
            team = (a["team_name"] or a["team_id"]) if shown else None
            if label not in rules:
                rules.append(label)
            if team is not None and team not in teams:
                teams.append(team)
            if a["status"] != "resolved":
                gaps.append(Gap(a["alert_id"], label, team, a["severity"] if shown else None,
                                a["status"], a["raised_at"], now - a["raised_at"]))
        gaps.sort(key=lambda g: (-g.open_for, g.alert_id))
        out.append(PanelRow(person, gaps, rules, teams, leads.get(person),
                            sum(1 for a in alerts if a["raised_at"] >= since)))
    return out


def lead_shown(lead: Mapping[str, Any], reader: Reader, teams: frozenset[str]) -> str:
    """The lead professional's team as this reader may see it."""
    name = str(lead["lead_name"])
    if lead["lead_team"] in teams or lead["agency_id"] == reader.agency:
        return name
    if service_category(lead["service_kind"] or "") in RESTRICTED:
        return CONFIDENTIAL
    return name


def chart(rows: Sequence[PanelRow], width: float = 360.0) -> list[Bar]:
    """Open gaps by what they are about and how long they have been open: one stacked bar
    each, scaled to the longest; most gaps first."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        for gap in row.gaps:
            counts.setdefault(gap.label, [0] * len(BANDS))[band(gap.open_for)] += 1
    most = max((sum(c) for c in counts.values()), default=0)
    bars = []
    for label, per_band in sorted(counts.items(), key=lambda kv: (-sum(kv[1]), kv[0])):
        x, segments = 0.0, []
        for i, count in enumerate(per_band):
            if count:
                w = width * count / most
                segments.append(Segment(i, round(x, 1), round(w, 1), count))
                x += w
        bars.append(Bar(label, tuple(per_band), segments))
    return bars


def csv_text(rows: Sequence[PanelRow], base_url: str) -> str:
    """The agenda as CSV, one person a line (no formula can start a cell)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["person_id", "person_page", "open_gaps", "longest_open",
                     "longest_open_hours", "about", "teams", "lead_professional",
                     "alerts_last_90_days", "repeated"])
    for r in rows:
        longest = r.longest
        writer.writerow([_cell(v) for v in (
            r.person_id, f"{base_url}/board/people/{r.person_id}", len(r.gaps),
            duration(longest) if longest is not None else "",
            f"{longest.total_seconds() / 3600:.1f}" if longest is not None else "",
            "; ".join(r.rules), "; ".join(r.teams), r.lead or "", r.recent,
            "yes" if r.repeated else "no")])
    return out.getvalue()


def _cell(value: object) -> str:
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def panel_rows(side: DutySide, session: Session, area: str) -> tuple[list[PanelRow], bool]:
    """The panel's rows for ``area`` as this reader may see them; True if capped."""
    now = side.clock()
    since = now - REPEATED_WITHIN
    alerts = await side.pool.fetch(sql.PANEL_ALERTS, area, since, MAX_PEOPLE)
    member = session.member
    assert member.caller is not None
    others = sorted({a["person_key"] for a in alerts if a["team_id"] not in member.teams})
    shown = await _shown_by_read_path(side, session, others)
    leads = {r["person_key"]: lead_shown(r, member.caller.reader, member.teams)
             for r in await side.pool.fetch(sql.LEAD_TEAMS,
                                            sorted({a["person_key"] for a in alerts}))}

    def visible(a: Mapping[str, Any]) -> bool:
        return a["team_id"] in member.teams or a["alert_id"] in shown

    rows = agenda(alerts, visible, leads, now, since)
    return rows, len(rows) >= MAX_PEOPLE


async def _shown_by_read_path(side: DutySide, session: Session, people: Sequence[str]
                              ) -> set[str]:
    """The alerts of ``people`` the read path shows this reader (one audited read each)."""
    caller = session.member.caller
    gate = asyncio.Semaphore(4)

    async def one(person: str) -> set[str]:
        async with gate:
            try:
                items = await side.reads.alerts(caller, person,  # type: ignore[arg-type]
                                                PANEL_PURPOSE)
            except ReadRefused:
                return set()
        return {s.item_id for s in items if not s.confidential}

    found: set[str] = set()
    for ids in await asyncio.gather(*(one(p) for p in people)):
        found |= ids
    return found


def panel_routes() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def areas(side: DutySide) -> list[str]:
        return [r["area"] for r in await side.pool.fetch(sql.AREAS)]

    async def default_area(side: DutySide, session: Session) -> str | None:
        teams = await side.desk.teams(session.member)
        return next((t["area"] for t in teams if t["area"]), None)

    @router.get("/panel")
    async def panel(request: Request, session: Signed,
                    area: Annotated[str | None, Query(max_length=20)] = None) -> Response:
        side = side_of(request)
        chosen = (area or "").strip().upper() or await default_area(side, session)
        known = await areas(side)
        if chosen is None:
            return render(request, "panel.html.j2", session=session, area=None, areas=known,
                          rows=[], bars=[], bands=BANDS, capped=False, problem=None)
        if not AREA.match(chosen):
            return render(request, "panel.html.j2", 422, session, area=None, areas=known,
                          rows=[], bars=[], bands=BANDS, capped=False,
                          problem="An area is an ONS code: a letter and eight digits, such "
                                  "as E08000035.")
        rows, capped = await panel_rows(side, session, chosen)
        return render(request, "panel.html.j2", session=session, area=chosen, areas=known,
                      rows=rows, bars=chart(rows), bands=BANDS, capped=capped, problem=None,
                      csv_url="/panel.csv?" + urlencode({"area": chosen}))

    @router.get("/panel.csv")
    async def panel_csv(request: Request, session: Signed,
                        area: Annotated[str, Query(max_length=20)]) -> Response:
        side = side_of(request)
        chosen = area.strip().upper()
        if not AREA.match(chosen):
            return refused(request, session, 422, "An area is an ONS code: a letter and "
                                                  "eight digits, such as E08000035.")
        rows, _ = await panel_rows(side, session, chosen)
        name = f"panel-{chosen}-{side.clock().astimezone(LONDON):%Y-%m-%d}.csv"
        return Response(csv_text(rows, side.settings.duty_public_url.rstrip("/")),
                        media_type="text/csv; charset=utf-8",
                        headers={**PAGE_HEADERS,
                                 "Content-Disposition": f'attachment; filename="{name}"'})

    return router
