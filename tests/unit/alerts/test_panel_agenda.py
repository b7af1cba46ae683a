"""The panel view's agenda, pure: people in the query's order with their open gaps longest
first, only what the reader may see of each alert ("Confidential" otherwise), the lead
professional withheld when its service reveals a restricted category, the chart's age bands
and scale, and a CSV no spreadsheet runs a formula from."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from services.alerts.entrypoints.panel import agenda, band, chart, csv_text, lead_shown
from services.reads.domain.visibility import Reader

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=90)


def alert(person: str, alert_id: str, days_ago: float, status: str = "open",
          title: str = "Released with no settled accommodation",
          team: str = "leeds-housing/options") -> dict:
    return {"person_key": person, "alert_id": alert_id, "rule_id": "rule", "title": title,
            "severity": "high", "status": status, "team_id": team, "team_name": team.upper(),
            "raised_at": NOW - timedelta(days=days_ago), "resolved_at": None}


def test_each_persons_gaps_longest_first_and_a_withheld_alert_is_confidential() -> None:
    rows = [alert("p1", "a1", 2), alert("p1", "a2", 9, title="Stuck between services",
                                        team="mh/duty"),
            alert("p2", "a3", 40, status="resolved"), alert("p2", "a4", 30, status="resolved")]
    people = agenda(rows, lambda a: a["team_id"] != "mh/duty", {"p1": "Leeds housing"},
                    NOW, SINCE)
    assert [p.person_id for p in people] == ["p1", "p2"]
    first = people[0]
    assert [g.alert_id for g in first.gaps] == ["a2", "a1"]
    assert first.gaps[0].confidential and first.gaps[0].team is None
    assert first.gaps[0].severity is None
    assert first.rules == ["Released with no settled accommodation", "Confidential"]
    assert first.teams == ["LEEDS-HOUSING/OPTIONS"]
    assert first.longest == timedelta(days=9) and first.lead == "Leeds housing"
    repeated = people[1]
    assert repeated.gaps == [] and repeated.longest is None
    assert repeated.recent == 2 and repeated.repeated


def test_the_lead_professional_is_withheld_when_its_service_reveals_a_restricted_category(
        ) -> None:
    reader = Reader("leeds-housing", "leeds-housing/options", "p-1")
    drugs = {"lead_team": "forward-leeds/duty", "lead_name": "Forward Leeds duty",
             "agency_id": "forward-leeds", "service_kind": "SUBSTANCE_USE"}
    housing = {"lead_team": "bradford-housing/options", "lead_name": "Bradford options",
               "agency_id": "bradford-housing", "service_kind": "HOUSING"}
    assert lead_shown(drugs, reader, frozenset()) == "Confidential"
    assert lead_shown(drugs, reader, frozenset({"forward-leeds/duty"})) == "Forward Leeds duty"
    assert lead_shown(dict(drugs, agency_id="leeds-housing"), reader, frozenset()) == (
        "Forward Leeds duty")
    assert lead_shown(housing, reader, frozenset()) == "Bradford options"


def test_age_bands_and_the_charts_scale() -> None:
    assert [band(timedelta(hours=h)) for h in (0, 23, 24, 71, 72, 167, 168, 5000)] == [
        0, 0, 1, 1, 2, 2, 3, 3]
    rows = agenda([alert("p1", "a1", 0.5), alert("p2", "a2", 2), alert("p3", "a3", 10),
                   alert("p4", "a4", 10, title="Stuck between services")],
                  lambda a: True, {}, NOW, SINCE)
    bars = chart(rows, width=300)
    assert [(b.label, b.counts) for b in bars] == [
        ("Released with no settled accommodation", (1, 1, 0, 1)),
        ("Stuck between services", (0, 0, 0, 1))]
    assert [(s.band, s.x, s.width) for s in bars[0].segments] == [
        (0, 0.0, 100.0), (1, 100.0, 100.0), (3, 200.0, 100.0)]
    assert bars[1].segments[0].width == 100.0 and chart([]) == []


def test_the_csv_has_one_line_a_person_and_no_cell_starts_a_formula() -> None:
    rows = agenda([alert("p1", "a1", 2, title="=HYPERLINK(\"x\")"), alert("p2", "a2", 1)],
                  lambda a: True, {}, NOW, SINCE)
    parsed = list(csv.DictReader(io.StringIO(csv_text(rows, "https://duty.example"))))
    assert [r["person_id"] for r in parsed] == ["p1", "p2"]
    assert parsed[0]["about"].startswith("'=")
    assert parsed[0]["person_page"] == "https://duty.example/board/people/p1"
    assert (parsed[0]["longest_open"], parsed[0]["longest_open_hours"]) == ("2 days", "48.0")
