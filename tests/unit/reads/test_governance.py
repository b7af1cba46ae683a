"""A person's governance record: the fold of their events, what it lets readers see, and
what may not be recorded on top of it (services/reads/domain/governance.py)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.reads.domain.governance import (
    AccessGranted,
    AccessRevoked,
    Actor,
    AgreementEnded,
    AgreementMade,
    ConsentGiven,
    ConsentWithdrawn,
    EntryDisclosed,
    EpisodeClosed,
    EpisodeOpened,
    GovernanceEvent,
    PersonRecord,
    agreements,
    context,
    fold,
    person_record,
)
from services.reads.domain.refusals import refusal
from services.reads.domain.visibility import (
    CONSENTED,
    GRANTED,
    LEAD_PROFESSIONAL,
    Entry,
    Reader,
    decide,
)
from tests.unit.reads.governance_samples import DRUGS_WORKER, LEAD, OPERATOR, PERSON, T0

N = iter(range(1, 10**6))
PROBATION = Actor("practitioner", "probation-yh", "5d9a1c2e-0000-4000-8000-000000000003",
                  "probation-yh/leeds-north")
DRUGS = Entry("7f0c1a52-8e1b-4a4e-b0a5-1c6a7d2e9f31", "forward-leeds", "SUBSTANCE_USE",
              "SUBSTANCE_USE", T0, "Referral accepted: to substance use")


def event(payload: object, actor: Actor = LEAD, minutes: int = 0,
          person: str | None = PERSON) -> GovernanceEvent:
    return GovernanceEvent(f"e-{next(N)}", T0 + timedelta(minutes=minutes), person, actor,
                           payload)  # type: ignore[arg-type]


def reader(actor: Actor) -> Reader:
    return Reader(actor.agency or "", actor.team_id, actor.practitioner_id)


def record_of(*events: GovernanceEvent) -> PersonRecord:
    record = PersonRecord()
    for e in events:
        assert refusal(record, e) is None, refusal(record, e)
        record = fold(record, e)
    return record


OPEN = event(EpisodeOpened("ep-1", LEAD.practitioner_id or "", "leeds-housing",
                           "leeds-housing/options"))


def test_the_lead_professional_sees_the_persons_restricted_entries_while_the_episode_is_open(
) -> None:
    record = record_of(OPEN)
    assert record.lead_professional is not None
    assert decide(DRUGS, reader(LEAD), context(record, ()), T0).because == LEAD_PROFESSIONAL
    closed = fold(record, event(EpisodeClosed("ep-1"), minutes=5))
    assert closed.lead_professional is None
    assert not decide(DRUGS, reader(LEAD), context(closed, ()), T0).visible


def test_a_grant_opens_until_revoked_or_the_episode_closes() -> None:
    grant = event(AccessGranted("g-1", "ep-1", PROBATION.practitioner_id, None), minutes=1)
    record = record_of(OPEN, grant)
    assert decide(DRUGS, reader(PROBATION), context(record, ()), T0).because == GRANTED
    revoked = fold(record, event(AccessRevoked("g-1"), minutes=2))
    assert not decide(DRUGS, reader(PROBATION), context(revoked, ()), T0).visible
    closed = fold(record, event(EpisodeClosed("ep-1"), minutes=2))
    assert not decide(DRUGS, reader(PROBATION), context(closed, ()), T0).visible


def test_only_the_lead_professional_grants_and_revokes() -> None:
    record = record_of(OPEN)
    by_other = event(AccessGranted("g-1", "ep-1", PROBATION.practitioner_id, None),
                     actor=PROBATION)
    assert refusal(record, by_other) == "only the lead professional grants access"
    record = fold(record, event(AccessGranted("g-1", "ep-1", None, "probation-yh/leeds-north")))
    assert refusal(record, event(AccessRevoked("g-1"), actor=PROBATION)) == (
        "only the lead professional revokes access")
    assert refusal(record, event(AccessRevoked("g-1"), actor=OPERATOR)) is None


def test_one_coordination_episode_at_a_time() -> None:
    record = record_of(OPEN)
    again = event(EpisodeOpened("ep-2", PROBATION.practitioner_id or "", "probation-yh"))
    assert "already open" in (refusal(record, again) or "")
    record = fold(record, event(EpisodeClosed("ep-1")))
    assert refusal(record, again) is None


def test_a_grant_outside_the_open_episode_or_naming_both_or_neither_is_refused() -> None:
    assert refusal(PersonRecord(), event(AccessGranted("g-1", "ep-1", "p", None))) == (
        "access is granted within the open coordination episode")
    record = record_of(OPEN)
    for practitioner, team in (("p", "t"), (None, None)):
        assert refusal(record, event(AccessGranted("g-1", "ep-1", practitioner, team))) == (
            "a grant names one practitioner or one team")


def test_consent_withdrawn_takes_effect_from_its_recording() -> None:
    given_ = event(ConsentGiven("c-1", frozenset({"probation-yh"}),
                                frozenset({"SUBSTANCE_USE"}), T0, T0 + timedelta(days=30),
                                "explicit"), actor=DRUGS_WORKER)
    record = record_of(given_)
    assert decide(DRUGS, reader(PROBATION), context(record, ()), T0 + timedelta(hours=1)
                  ).because == CONSENTED
    record = fold(record, event(ConsentWithdrawn("c-1"), actor=DRUGS_WORKER, minutes=90))
    assert decide(DRUGS, reader(PROBATION), context(record, ()), T0 + timedelta(hours=1)
                  ).visible  # a read before the withdrawal was recorded was lawful then
    assert not decide(DRUGS, reader(PROBATION), context(record, ()),
                      T0 + timedelta(minutes=90)).visible
    assert refusal(record, event(ConsentWithdrawn("c-1"))) == "this consent is already withdrawn"
    assert record.consents["c-1"].consent.recorded_by == DRUGS_WORKER.practitioner_id


def test_consent_is_checked_before_it_is_recorded() -> None:
    bad_kind = ConsentGiven("c-1", frozenset(), frozenset(), T0, None, "assumed")
    assert "consent kind" in (refusal(PersonRecord(), event(bad_kind)) or "")
    bad_category = dataclasses.replace(bad_kind, kind="informed", categories=frozenset({"X"}))
    assert refusal(PersonRecord(), event(bad_category)) == "unknown categories: X"
    backwards = dataclasses.replace(bad_kind, kind="informed", expires=T0 - timedelta(days=1))
    assert refusal(PersonRecord(), event(backwards)) == "expires must be after starts"
    assert refusal(PersonRecord(), event(ConsentWithdrawn("c-9"))) == (
        "no such consent for this person")
    assert "names the person" in (refusal(PersonRecord(), event(
        dataclasses.replace(bad_kind, kind="informed"), person=None)) or "")


def test_only_the_recording_agency_discloses_an_entry_with_a_legal_basis_and_reason() -> None:
    disclosure = EntryDisclosed("d-1", "forward-leeds", DRUGS.event_id, "leeds-housing",
                                "safeguarding", "risk of eviction")
    assert refusal(PersonRecord(), event(disclosure, actor=PROBATION)) == (
        "only the agency that recorded an entry discloses it")
    assert refusal(PersonRecord(), event(disclosure, actor=DRUGS_WORKER)) is None
    for change, words in (({"legal_basis": "because"}, "legal basis is one of"),
                          ({"reason": "  "}, "records its reason"),
                          ({"to_agency": "forward-leeds"}, "to another agency")):
        bad = dataclasses.replace(disclosure, **change)  # type: ignore[arg-type]
        assert words in (refusal(PersonRecord(), event(bad, actor=DRUGS_WORKER)) or "")


def test_agreements_never_share_restricted_categories_and_end_once() -> None:
    made = AgreementMade("a-1", frozenset({"hmp-leeds", "leeds-housing"}),
                         frozenset({"CRIMINAL_JUSTICE"}), T0)
    assert refusal(PersonRecord(), event(made, OPERATOR, person=None)) is None
    restricted = dataclasses.replace(made, categories=frozenset({"SUBSTANCE_USE", "GENERAL"}))
    assert "never by agreement: SUBSTANCE_USE" in (
        refusal(PersonRecord(), event(restricted, OPERATOR, person=None)) or "")
    one_party = dataclasses.replace(made, agencies=frozenset({"hmp-leeds"}))
    assert "at least two" in (refusal(PersonRecord(), event(one_party, OPERATOR,
                                                            person=None)) or "")
    assert "not about a person" in (refusal(PersonRecord(), event(made, OPERATOR)) or "")
    log = [event(made, OPERATOR, person=None),
           event(AgreementEnded("a-1"), OPERATOR, minutes=60, person=None)]
    found = agreements(log)
    release = Entry("e-2", "hmp-leeds", "PRISON", "CRIMINAL_JUSTICE", T0, "Prison release")
    housing = Reader("leeds-housing")
    ctx = context(PersonRecord(), found.values())
    assert decide(release, housing, ctx, T0 + timedelta(minutes=59)).visible
    assert not decide(release, housing, ctx, T0 + timedelta(minutes=60)).visible
    assert refusal(PersonRecord(), event(AgreementEnded("a-1"), OPERATOR, person=None),
                   found) == "this agreement has already ended"
    assert refusal(PersonRecord(), event(made, OPERATOR, person=None), found) == (
        "an agreement with this id is already recorded")


# --- properties -------------------------------------------------------------------------------

ACTORS = st.sampled_from([LEAD, PROBATION, DRUGS_WORKER, OPERATOR])
ids = st.sampled_from(["1", "2"])
payloads = st.one_of(
    st.builds(ConsentGiven, ids, st.just(frozenset({"probation-yh"})),
              st.just(frozenset({"SUBSTANCE_USE"})), st.just(T0), st.none(),
              st.just("explicit")),
    st.builds(ConsentWithdrawn, ids),
    st.builds(EpisodeOpened, ids, st.sampled_from([LEAD.practitioner_id,
                                                   PROBATION.practitioner_id]),
              st.just("leeds-housing")),
    st.builds(EpisodeClosed, ids),
    st.builds(AccessGranted, ids, ids, st.sampled_from([PROBATION.practitioner_id, None]),
              st.sampled_from([None, "forward-leeds/duty"])),
    st.builds(AccessRevoked, ids),
)


@given(st.lists(st.tuples(payloads, ACTORS), max_size=12))
def test_what_is_recorded_keeps_the_record_sound(steps: list[tuple[object, Actor]]) -> None:
    """Whatever practitioners try, in any order: only events ``refusal`` lets through are
    recorded, and then there is at most one open episode, every live grant belongs to an
    episode whose coordinator granted it, and folding the recorded log again gives the
    same record (a read decides on the log, not on a cache)."""
    record, log = PersonRecord(), []
    for minute, (payload, actor) in enumerate(steps):
        e = event(payload, actor, minutes=minute)
        if refusal(record, e) is None:
            record = fold(record, e)
            log.append(e)
    assert sum(1 for ep in record.episodes.values() if ep.closed_at is None) <= 1
    for grant in record.grants.values():
        assert grant.episode_id in record.episodes
    assert person_record(log) == record
    live = context(record, ()).grants
    if record.open_episode is None:
        assert live == ()
