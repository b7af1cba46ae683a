"""The person index: the matching rule, explicit links, unlinks and splits, and the index
rebuilt from its own recorded changes. Pure, no broker."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.events import Identifier
from services.identity.domain import (
    OPERATOR,
    Attached,
    Change,
    Identified,
    Merged,
    PersonIndex,
    PossibleMatch,
    apply_change,
    indexed,
    link,
    resolve,
    split,
    unlink,
)

NHS_A, NHS_B = Identifier("nhs_number", "9434765919"), Identifier("nhs_number", "9434765870")
CRN_A = Identifier("crn", "X123456")
NOMS_A, NOMS_B = Identifier("noms_number", "A1234BC"), Identifier("noms_number", "B2345CD")
LOCAL = Identifier("local_id", "LEEDS-HOUSING-77")


def new_ids(counter: itertools.count[int] | None = None):  # type: ignore[no-untyped-def]
    counter = counter or itertools.count()
    return lambda: f"person-{next(counter)}"


def test_unknown_identifiers_are_a_new_person_and_known_ones_that_person() -> None:
    index, new_id = PersonIndex(), new_ids()
    person, changes = resolve(index, [NHS_A, LOCAL], new_id)
    assert changes == [Identified(person, (NHS_A, LOCAL))]
    again, changes = resolve(index, [LOCAL], new_id)
    assert (again, changes) == (person, [])
    same, changes = resolve(index, [NHS_A, CRN_A], new_id)
    assert same == person and changes == [Attached(person, (CRN_A,))]


def test_two_strong_identifiers_of_two_people_merge_them_into_the_older() -> None:
    index, new_id = PersonIndex(), new_ids()
    health, _ = resolve(index, [NHS_A], new_id)
    probation, _ = resolve(index, [CRN_A], new_id)
    person, changes = resolve(index, [CRN_A, NHS_A], new_id)
    assert person == health and changes == [Merged(health, (probation,), "rule")]
    assert index.current(probation) == health  # the old id keeps resolving
    assert index.person_of(CRN_A) == health


def test_one_strong_identifier_and_a_local_one_do_not_merge_two_people() -> None:
    index, new_id = PersonIndex(), new_ids()
    health, _ = resolve(index, [NHS_A], new_id)
    housing, _ = resolve(index, [LOCAL], new_id)
    person, changes = resolve(index, [LOCAL, NHS_A], new_id)
    assert person == health  # the strongest identifier decides
    assert [type(c) for c in changes] == [PossibleMatch]
    assert index.person_of(LOCAL) == housing


def test_people_with_different_nhs_numbers_are_never_merged_by_the_rule() -> None:
    index, new_id = PersonIndex(), new_ids()
    first, _ = resolve(index, [NHS_A, CRN_A], new_id)
    second, _ = resolve(index, [NHS_B, NOMS_A], new_id)
    person, changes = resolve(index, [CRN_A, NOMS_A], new_id)
    assert {index.person_of(CRN_A), index.person_of(NOMS_A)} == {first, second}
    assert [type(c) for c in changes] == [PossibleMatch]


def test_a_second_nhs_number_is_not_attached_to_a_person() -> None:
    """The NHS number is the event's strongest identifier: it names a new person, possibly
    the CRN's (an operator decides); the CRN stays where it was."""
    index, new_id = PersonIndex(), new_ids()
    person, _ = resolve(index, [NHS_A, CRN_A], new_id)
    other, changes = resolve(index, [CRN_A, NHS_B], new_id)
    assert other != person and [type(c) for c in changes] == [Identified, PossibleMatch]
    assert index.person_of(NHS_B) == other and index.person_of(CRN_A) == person
    assert changes[1].person_ids == (person, other)  # type: ignore[union-attr]


def test_a_clashing_identifier_that_is_not_the_strongest_is_left_out() -> None:
    index, new_id = PersonIndex(), new_ids()
    person, _ = resolve(index, [NHS_A, NOMS_A], new_id)
    same, changes = resolve(index, [NHS_A, Identifier("noms_number", "Z9999ZZ")], new_id)
    assert same == person and [type(c) for c in changes] == [PossibleMatch]
    assert index.person_of(Identifier("noms_number", "Z9999ZZ")) is None


def test_local_ids_are_held_qualified_by_their_agency() -> None:
    ids = (Identifier("nhs_number", "9434765919"), Identifier("local_id", "RIO-1"))
    assert indexed(ids, "mh-trust-leeds") == (
        ids[0], Identifier("local_id", "mh-trust-leeds/RIO-1"))


def test_unlink_revives_the_absorbed_person_and_an_operators_split_is_never_re_merged() -> None:
    index, new_id = PersonIndex(), new_ids()
    prison, _ = resolve(index, [NOMS_A, LOCAL], new_id)
    health, _ = resolve(index, [NHS_A], new_id)
    link(index, NOMS_A, NHS_A, "hmp-leeds", new_id)
    assert index.person_of(NHS_A) == prison
    resolve(index, [NHS_A, CRN_A], new_id)  # CRN_A first seen after the link: it stays
    unlink(index, NOMS_A, NHS_A, OPERATOR)
    assert index.person_of(NHS_A) == health and index.current(health) == health
    assert {index.person_of(NOMS_A), index.person_of(LOCAL), index.person_of(CRN_A)} == {
        prison}
    # The rule would merge them (two strong identifiers) but an operator split them.
    _, changes = resolve(index, [NHS_A, NOMS_A], new_id)
    assert index.person_of(NHS_A) != index.person_of(NOMS_A)
    assert [type(c) for c in changes] == [PossibleMatch]
    # An agency's merge notice does not undo it either; an operator's link does.
    assert [type(c) for c in link(index, NHS_A, NOMS_A, "hmp-leeds", new_id)] == [
        PossibleMatch]
    link(index, NHS_A, NOMS_A, OPERATOR, new_id)
    assert index.person_of(NHS_A) == index.person_of(NOMS_A)


def test_unlink_works_whichever_side_survived() -> None:
    index, new_id = PersonIndex(), new_ids()
    older, _ = resolve(index, [NHS_A], new_id)
    younger, _ = resolve(index, [NOMS_A], new_id)
    link(index, NOMS_A, NHS_A, OPERATOR, new_id)
    unlink(index, NHS_A, NOMS_A, OPERATOR)  # b's side is the survivor here
    assert index.person_of(NHS_A) == older and index.person_of(NOMS_A) == younger


def test_a_split_moves_identifiers_to_a_new_person_the_rule_leaves_apart() -> None:
    index, new_id = PersonIndex(), new_ids()
    person, _ = resolve(index, [NHS_A, NOMS_A], new_id)  # wrongly recorded together
    assert len(split(index, [NOMS_A], new_id)) == 1
    assert index.person_of(NOMS_A) != person and index.person_of(NHS_A) == person
    resolve(index, [NHS_A, NOMS_A], new_id)
    assert index.person_of(NOMS_A) != index.person_of(NHS_A)


POOL = [NHS_A, NHS_B, CRN_A, NOMS_A, NOMS_B, LOCAL, Identifier("pnc_id", "2001/0123456A")]
operations = st.lists(st.one_of(
    st.tuples(st.just("resolve"), st.lists(st.sampled_from(POOL), min_size=1, max_size=3)),
    st.tuples(st.sampled_from(["link", "unlink", "agency-link"]),
              st.lists(st.sampled_from(POOL), min_size=2, max_size=2, unique=True))),
    max_size=25)


@settings(max_examples=300)
@given(operations)
def test_the_index_rebuilt_from_its_changes_is_the_same_and_stays_consistent(
        steps: list[tuple[str, list[Identifier]]]) -> None:
    index, new_id, log = PersonIndex(), new_ids(), []
    issued: set[str] = set()
    kept_apart: set[tuple[Identifier, Identifier]] = set()  # by an operator's unlink
    for operation, identifiers in steps:
        changes: list[Change]
        if operation == "resolve":
            person, changes = resolve(index, identifiers, new_id)
            assert all(index.person_of(i) is not None for i in identifiers
                       if i in index.owner)
            assert index.current(person) == person
        elif operation == "link":
            changes = link(index, *identifiers, OPERATOR, new_id)
            if any(isinstance(c, Merged) for c in changes):
                kept_apart.clear()  # an operator may join what an operator split
        elif operation == "agency-link":
            changes = link(index, *identifiers, "hmp-leeds", new_id)
        else:
            changes = unlink(index, *identifiers, OPERATOR)
            if changes:
                kept_apart.add((identifiers[0], identifiers[1]))
        for a, b in kept_apart:  # the rule and agencies never join them again
            assert index.person_of(a) != index.person_of(b)
        log += changes
        issued |= {c.person_id for c in changes if isinstance(c, Identified)}
    replayed = PersonIndex()
    for change in log:
        apply_change(replayed, change)
    assert replayed == index
    # Every identifier belongs to a living person, who holds it; every id ever issued
    # resolves to a living person.
    for identifier, person in index.owner.items():
        assert person not in index.moved and identifier in index.members[person]
    assert all(index.current(p) in index.members for p in issued)


def test_a_split_holds_through_later_merges_with_third_records() -> None:
    """Kept apart by an operator, then each side merged by the rule with a third record:
    the third record may join one side only."""
    index, new_id = PersonIndex(), new_ids()
    resolve(index, [CRN_A], new_id)  # the oldest: it survives merges
    resolve(index, [NHS_A], new_id)
    resolve(index, [NOMS_A], new_id)
    link(index, NHS_A, NOMS_A, OPERATOR, new_id)
    unlink(index, NHS_A, NOMS_A, OPERATOR)
    resolve(index, [CRN_A, NHS_A], new_id)  # merges NHS_A's person into CRN_A's
    resolve(index, [CRN_A, NOMS_A], new_id)  # must not bring NOMS_A in as well
    assert index.person_of(NHS_A) != index.person_of(NOMS_A)
