"""Who may see a person's timeline entries (services/reads/domain/visibility.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import SENSITIVITIES
from services.reads.domain.visibility import (
    CONFIDENTIAL,
    RESTRICTED,
    Agreement,
    Consent,
    Context,
    Disclosure,
    Entry,
    Grant,
    Reader,
    decide,
    filtered,
    shown,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DRUGS = Entry("e-1", "forward-leeds", "SUBSTANCE_USE", "SUBSTANCE_USE", T0,
              "Referral accepted: to substance use")
RELEASE = Entry("e-2", "hmp-leeds", "PRISON", "CRIMINAL_JUSTICE", T0, "Prison release occurred")
HOUSING = Reader("leeds-housing", team="options", practitioner="p-7")
CONSENT = Consent(frozenset({"leeds-housing"}), frozenset({"SUBSTANCE_USE"}), T0,
                  T0 + timedelta(days=365), "explicit", "p-3")


def test_the_recording_agency_always_sees_its_own_entries() -> None:
    assert decide(DRUGS, Reader("forward-leeds"), Context(), T0).visible


def test_restricted_entries_are_confidential_elsewhere_even_under_an_agreement() -> None:
    agreement = Agreement(frozenset({"forward-leeds", "leeds-housing"}),
                          frozenset(SENSITIVITIES))
    decision = decide(DRUGS, HOUSING, Context(agreements=(agreement,)), T0)
    assert not decision.visible and decision.because == "restricted"
    stub = shown(DRUGS, decision)
    assert (stub.summary, stub.sensitivity, stub.agency) == (CONFIDENTIAL, CONFIDENTIAL, "")
    assert (stub.occurred_at, stub.service_kind) == (T0, "SUBSTANCE_USE")  # date, agency type


def test_other_entries_need_an_agreement_covering_their_category() -> None:
    covers = Agreement(frozenset({"hmp-leeds", "leeds-housing"}),
                       frozenset({"CRIMINAL_JUSTICE"}))
    other = Agreement(frozenset({"hmp-leeds", "leeds-housing"}), frozenset({"HEALTH"}))
    assert decide(RELEASE, HOUSING, Context(agreements=(covers,)), T0).visible
    assert not decide(RELEASE, HOUSING, Context(agreements=(other,)), T0).visible
    assert not decide(RELEASE, HOUSING, Context(), T0).visible


def test_consent_opens_within_its_scope_and_period_and_withdrawal_takes_effect_at_once() -> None:
    context = Context(consents=(CONSENT,))
    assert decide(DRUGS, HOUSING, context, T0 + timedelta(days=1)).because == (
        "the person's consent")
    assert not decide(DRUGS, Reader("probation-yh"), context, T0).visible   # not in scope
    assert not decide(DRUGS, HOUSING, context, T0 - timedelta(seconds=1)).visible
    assert not decide(DRUGS, HOUSING, context, T0 + timedelta(days=365)).visible  # expired
    withdrawn = dataclasses.replace(CONSENT, withdrawn_at=T0 + timedelta(days=2))
    context = Context(consents=(withdrawn,))
    assert decide(DRUGS, HOUSING, context, T0 + timedelta(days=1)).visible
    assert not decide(DRUGS, HOUSING, context, T0 + timedelta(days=2)).visible


def test_consent_has_a_kind() -> None:
    with pytest.raises(ValueError, match="explicit, informed, implicit"):
        dataclasses.replace(CONSENT, kind="assumed")


def test_a_lead_professionals_grant_opens_restricted_entries_until_revoked() -> None:
    named = Grant("p-7", None)
    assert decide(DRUGS, HOUSING, Context(grants=(named,)), T0).because == (
        "granted by the lead professional")
    assert not decide(DRUGS, dataclasses.replace(HOUSING, practitioner="p-8", team="other"),
                      Context(grants=(named,)), T0).visible
    assert decide(DRUGS, HOUSING, Context(grants=(Grant(None, "options"),)), T0).visible
    assert not decide(DRUGS, HOUSING, Context(grants=(dataclasses.replace(
        named, revoked=True),)), T0).visible


def test_a_disclosure_shows_that_entry_to_that_agency_only() -> None:
    disclosure = Disclosure("e-1", "leeds-housing", "risk of eviction", "vital interests",
                            "p-3")
    context = Context(disclosures=(disclosure,))
    assert decide(DRUGS, HOUSING, context, T0).because == "disclosed to the reader's agency"
    assert not decide(DRUGS, Reader("probation-yh"), context, T0).visible
    other = dataclasses.replace(DRUGS, event_id="e-9")
    assert not decide(other, HOUSING, context, T0).visible


entries = st.builds(Entry, st.sampled_from(["e-1", "e-2"]),
                    st.sampled_from(["forward-leeds", "hmp-leeds", "leeds-housing"]),
                    st.sampled_from(["PRISON", "SUBSTANCE_USE", "HOUSING"]),
                    st.sampled_from(SENSITIVITIES), st.just(T0), st.text(min_size=1))
contexts = st.builds(
    Context,
    consents=st.lists(st.builds(
        Consent, st.frozensets(st.sampled_from(["leeds-housing", "hmp-leeds"])),
        st.frozensets(st.sampled_from(SENSITIVITIES)), st.just(T0 - timedelta(days=1)),
        st.none(), st.sampled_from(["explicit", "implicit"]), st.just("p-1"),
        st.one_of(st.none(), st.just(T0 - timedelta(hours=1)))), max_size=2).map(tuple),
    agreements=st.lists(st.builds(
        Agreement, st.frozensets(st.sampled_from(["forward-leeds", "hmp-leeds",
                                                  "leeds-housing"])),
        st.frozensets(st.sampled_from(SENSITIVITIES))), max_size=2).map(tuple),
    grants=st.lists(st.builds(Grant, st.sampled_from([None, "p-7", "p-8"]),
                              st.sampled_from([None, "options"]), st.booleans()),
                    max_size=2).map(tuple))


@given(st.lists(entries, max_size=6), contexts)
def test_a_withheld_entry_shows_nothing_of_its_content(entries_: list[Entry],
                                                       context: Context) -> None:
    for entry, (out, decision) in zip(entries_, filtered(entries_, HOUSING, context, T0),
                                      strict=True):
        if decision.visible:
            assert out == entry
        else:
            assert (out.summary, out.sensitivity, out.agency) == (CONFIDENTIAL, CONFIDENTIAL,
                                                                  "")
            assert (out.event_id, out.occurred_at) == (entry.event_id, entry.occurred_at)
        # restricted entries of other agencies open only by a grant, consent or disclosure
        if (entry.sensitivity in RESTRICTED and entry.agency != HOUSING.agency
                and decision.visible):
            assert decision.because in ("granted by the lead professional",
                                        "the person's consent")
