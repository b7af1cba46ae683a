"""Read models as a reader is shown them (services/reads/domain/views.py): a caseload
involvement is in its service's category, a referral is the receiving agency's own too, and
an alert reveals its rule's subject and its resolving event's as well as its trigger's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.reads.domain import views
from services.reads.domain.visibility import Agreement, Context, Reader

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PROBATION = Reader("probation-yh", "probation-yh/leeds", "p-1")
AGREEMENT = Context(agreements=(Agreement(frozenset({"probation-yh", "hmp-leeds"}),
                                          frozenset({"CRIMINAL_JUSTICE"})),))
RULES = {"release-substance-treatment-21d": "SUBSTANCE_USE",
         "prison-release-no-settled-accommodation": "CRIMINAL_JUSTICE"}


def alert(rule: str, **changes: Any) -> dict[str, Any]:
    row = {"alert_id": "a-1", "rule_id": rule, "severity": "high", "duty_team": "housing:E1",
           "title": "t", "explanation": "e", "expected": "x", "source_reference": "s",
           "status": "open", "raised_at": T0, "due_at": None, "resolved_at": None,
           "resolution": None, "trigger_event_id": "e-1", "source_agency": "hmp-leeds",
           "service_kind": "PRISON", "sensitivity": "CRIMINAL_JUSTICE", "occurred_at": T0,
           "resolving_sensitivity": None, "resolving_service_kind": None, "historical": False}
    return {**row, **changes}


def shown(row: dict[str, Any], reader: Reader = PROBATION) -> views.Shown:
    [out] = views.alerts([row], reader, AGREEMENT, T0, rules=RULES)
    return out


def test_an_alert_is_shown_when_its_trigger_and_its_rule_are_open_to_the_reader() -> None:
    out = shown(alert("prison-release-no-settled-accommodation"))
    assert not out.confidential and out.fields["title"] == "t"


def test_an_alert_about_a_restricted_subject_stays_confidential_though_its_trigger_is_shared(
) -> None:
    out = shown(alert("release-substance-treatment-21d"))
    assert out.confidential and out.fields == {} and out.service_kind == "PRISON"


def test_an_alert_resolved_by_a_restricted_entry_reveals_that_entry_s_category() -> None:
    out = shown(alert("prison-release-no-settled-accommodation", status="resolved",
                      resolving_sensitivity="GENERAL", resolving_service_kind="SUBSTANCE_USE"))
    assert out.confidential


def test_an_alert_of_a_rule_the_pack_does_not_know_is_shown_only_to_its_duty_teams_agency(
) -> None:
    assert shown(alert("retired-rule")).confidential
    routed = alert("retired-rule", duty_team="probation-yh:leeds")
    assert not shown(routed).confidential


def test_caseload_involvement_is_in_the_category_of_its_kind_of_service() -> None:
    rows = [{"agency": a, "service_kind": k, "active": True, "since": T0, "last_event_at": T0,
             "last_event_id": f"e-{a}", "ended_reason": None}
            for a, k in (("leeds-housing", "HOUSING"), ("forward-leeds", "SUBSTANCE_USE"))]
    housing, drugs = views.caseload(rows, PROBATION, Context(), T0)
    assert not housing.confidential and housing.fields["agency"] == "leeds-housing"
    assert drugs.confidential and drugs.item_id == "e-forward-leeds" and drugs.fields == {}


def test_a_referral_is_the_receiving_agency_s_own_and_takes_its_most_sensitive_category(
) -> None:
    row = {"referral_id": "r-1", "from_agency": "hmp-leeds", "to_agency": "forward-leeds",
           "to_service_kind": "SUBSTANCE_USE", "status": "accepted", "status_at": T0,
           "made_at": T0, "decline_reason": None, "cites_service_kind": None,
           "last_event_id": "e-1", "sensitivities": ["CRIMINAL_JUSTICE"]}
    [to_them] = views.referrals([row], Reader("forward-leeds"), Context(), T0)
    assert not to_them.confidential and to_them.fields["category"] == "SUBSTANCE_USE"
    [to_probation] = views.referrals([row], PROBATION, AGREEMENT, T0)
    assert to_probation.confidential
