"""The person index: which records are one person, under an opaque person id. Pure.

A person id is a random UUID drawn by the caller (``new_id``), never derived from an
identifier, so nobody can recompute it from an NHS number. Because it is random, the index is
itself event-sourced: every decision below comes back as identity changes (``Identified``,
``Attached``, ``Merged``, ``Separated``, ``PossibleMatch``; ``Erased`` for an erasure) for
the identity step to put on its log, and a replay rebuilds the index from those changes
(``apply_change``) rather than drawing new ids. The functions mutate the ``PersonIndex``
they are given (one dict update per change, as ``ReadModel.fold_all`` does) and return the
changes; nothing else.

The matching rule (deterministic, the only automatic one):

1. An identifier belongs to at most one person. Schemes are *strong* (national: NHS number,
   NOMS number, PNC id, probation CRN) or *local* (one agency's own id, held qualified by
   that agency, ``<agency>/<value>``: two agencies' equal local ids are two records; see
   ``indexed``).
2. An event whose identifiers are all unknown is a new person holding all of them.
3. An event whose known identifiers all belong to one person is that person; its unknown
   identifiers join them, except a strong identifier in a scheme the person already holds
   with another value (two NHS numbers are two people, or an error): it is left out and
   reported as a possible match for an operator. When that identifier is the event's
   strongest, the event is a new person holding its unknown identifiers (possibly the
   same as the other, for an operator to decide): the strongest identifier names the person.
4. An event whose known identifiers belong to several people merges them only when it
   carries at least two strong identifiers (the publishing agency matched on both), no two
   of those people hold different values in one strong scheme, and no operator has split
   them apart. The surviving id is the oldest person's; the others keep resolving to it.
   Otherwise the event goes to the person of its strongest identifier, and the others are
   reported as a possible match. Nothing is ever merged on a single shared local id.

Explicit assertions (``link``, ``unlink``, ``split``) come from an agency (a merge notice
such as HMPPS's prisoner-merged event) or an operator, always with who asserted them. A
split made by an operator is never undone automatically; only an operator's link re-merges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from services.common.events import IDENTIFIER_SCHEMES, Identifier

STRONG_SCHEMES = frozenset({"nhs_number", "noms_number", "pnc_id", "crn"})
_RANK = {scheme: i for i, scheme in enumerate(IDENTIFIER_SCHEMES)}
OPERATOR = "operator"

NewId = Callable[[], str]


# --- the changes: what the identity step records -------------------------------------------

@dataclass(frozen=True, slots=True)
class Identified:
    """A new person, holding these identifiers."""
    person_id: str
    identifiers: tuple[Identifier, ...]


@dataclass(frozen=True, slots=True)
class Attached:
    """Identifiers seen for the first time, with a person already known."""
    person_id: str
    identifiers: tuple[Identifier, ...]


@dataclass(frozen=True, slots=True)
class Merged:
    """``absorbed`` are now ``into``: their ids resolve there."""
    into: str
    absorbed: tuple[str, ...]
    asserted_by: str          # "rule" (the matching rule), an agency id, or "operator"


@dataclass(frozen=True, slots=True)
class Separated:
    """``identifiers`` left ``from_id`` for ``person_id`` (revived, or new for a split); the
    two are kept apart from now on when an operator asserted it."""
    person_id: str
    from_id: str
    identifiers: tuple[Identifier, ...]
    asserted_by: str


@dataclass(frozen=True, slots=True)
class PossibleMatch:
    """People the rule would not merge, for an operator to decide (no identifier values)."""
    person_ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Erased:
    """The people (every person id of one person) are forgotten: their identifiers leave
    the index, so a later event under them is somebody new (their data keys are destroyed
    with it: see services/identity/key_ring.py)."""
    person_ids: tuple[str, ...]


Change = Identified | Attached | Merged | Separated | PossibleMatch | Erased


# --- the index --------------------------------------------------------------------------------

@dataclass
class PersonIndex:
    owner: dict[Identifier, str] = field(default_factory=dict)     # identifier -> person
    members: dict[str, set[Identifier]] = field(default_factory=dict)  # live person -> ids
    origin: dict[Identifier, str] = field(default_factory=dict)    # the person it came with
    moved: dict[str, str] = field(default_factory=dict)            # merged id -> where it went
    born: dict[str, int] = field(default_factory=dict)             # person -> creation order
    #: pairs of identifiers an operator separated: records that are never one person again
    #: unless an operator links them (kept by identifier, so they hold wherever either
    #: record goes next: a later merge or separation moves identifiers between person ids)
    apart: set[frozenset[Identifier]] = field(default_factory=set)

    def current(self, person_id: str) -> str:
        """Where a person id resolves now (an old id keeps resolving where it went)."""
        seen = set()
        while person_id in self.moved and person_id not in seen:
            seen.add(person_id)
            person_id = self.moved[person_id]
        return person_id

    def person_of(self, identifier: Identifier) -> str | None:
        return self.owner.get(identifier)


def apply_change(index: PersonIndex, change: Change) -> None:
    """Replay one recorded change into the index (the index is rebuilt from its log)."""
    _APPLY[type(change)](index, change)


def _identified(index: PersonIndex, c: Identified) -> None:
    index.born[c.person_id] = len(index.born)
    index.members[c.person_id] = set()
    _attach(index, c.person_id, c.identifiers, origin=c.person_id)


def _attached(index: PersonIndex, c: Attached) -> None:
    _attach(index, c.person_id, c.identifiers, origin=c.person_id)


def _attach(index: PersonIndex, person: str, identifiers: Iterable[Identifier],
            origin: str) -> None:
    for identifier in identifiers:
        index.owner[identifier] = person
        index.origin.setdefault(identifier, origin)
        index.members[person].add(identifier)


def _merged(index: PersonIndex, c: Merged) -> None:
    for absorbed in c.absorbed:
        if c.asserted_by == OPERATOR and index.apart:  # an operator's link undoes a split
            index.apart -= {frozenset((x, y)) for x in index.members[c.into]
                            for y in index.members.get(absorbed, ())}
        for identifier in index.members.pop(absorbed, set()):
            index.owner[identifier] = c.into
            index.members[c.into].add(identifier)
        index.moved[absorbed] = c.into


def _separated(index: PersonIndex, c: Separated) -> None:
    index.moved.pop(c.person_id, None)
    index.born.setdefault(c.person_id, len(index.born))
    index.members.setdefault(c.person_id, set())
    for identifier in c.identifiers:
        index.members[c.from_id].discard(identifier)
        index.owner[identifier] = c.person_id
        index.members[c.person_id].add(identifier)
    if c.asserted_by == OPERATOR:
        index.apart |= {frozenset((x, y)) for x in c.identifiers
                        for y in index.members[c.from_id]}


def _possible_match(index: PersonIndex, c: PossibleMatch) -> None:
    pass  # for operators; the index is unchanged


def _erased(index: PersonIndex, c: Erased) -> None:
    gone: set[Identifier] = set()
    for person in c.person_ids:
        gone |= index.members.get(person, set())
        if person in index.members:
            index.members[person] = set()
    for identifier in gone:
        index.owner.pop(identifier, None)
        index.origin.pop(identifier, None)
    if gone and index.apart:
        index.apart = {pair for pair in index.apart if not pair & gone}


_APPLY: dict[type, Callable[[PersonIndex, object], None]] = {
    Identified: _identified,  # type: ignore[dict-item]
    Attached: _attached,  # type: ignore[dict-item]
    Merged: _merged,  # type: ignore[dict-item]
    Separated: _separated,  # type: ignore[dict-item]
    PossibleMatch: _possible_match,  # type: ignore[dict-item]
    Erased: _erased,  # type: ignore[dict-item]
}


def _recorded(index: PersonIndex, changes: list[Change], change: Change) -> None:
    apply_change(index, change)
    changes.append(change)


# --- the matching rule ---------------------------------------------------------------------------

def resolve(index: PersonIndex, identifiers: Sequence[Identifier], new_id: NewId
            ) -> tuple[str, list[Change]]:
    """The person an event's identifiers are, by the matching rule; and the changes."""
    if not identifiers:
        raise ValueError("an event needs at least one identifier to be resolved")
    changes: list[Change] = []
    people = list(dict.fromkeys(p for i in strongest_first(identifiers)
                                if (p := index.person_of(i)) is not None))
    if not people:
        person = new_id()
        _recorded(index, changes, Identified(person, tuple(dict.fromkeys(identifiers))))
        return person, changes
    if len(people) > 1:
        strong = {i for i in identifiers if i.scheme in STRONG_SCHEMES}
        if len(strong) >= 2 and _compatible(index, people):
            survivor = min(people, key=index.born.__getitem__)
            _recorded(index, changes, Merged(survivor, tuple(p for p in people
                                                             if p != survivor), "rule"))
            people = [survivor]
        else:
            changes.append(PossibleMatch(tuple(people), "the event's identifiers belong to "
                                         "several people the matching rule does not merge"))
    person = people[0]
    unknown = [i for i in dict.fromkeys(identifiers) if index.person_of(i) is None]
    held = {i.scheme: i.value for i in index.members[person] if i.scheme in STRONG_SCHEMES}
    clashing = [i for i in unknown if i.scheme in held and held[i.scheme] != i.value]
    if clashing and strongest_first(identifiers)[0] in clashing:
        # The event's strongest identifier names someone the known records cannot be (they
        # hold another value in its scheme): a new person, possibly the same as them.
        newcomer = new_id()
        _recorded(index, changes, Identified(newcomer, tuple(unknown)))
        changes.append(PossibleMatch((person, newcomer), "the event's strongest identifier "
                                     "differs from the one its other records hold"))
        return newcomer, changes
    joining = tuple(i for i in unknown if i not in clashing)
    if joining:
        _recorded(index, changes, Attached(person, joining))
    if clashing:
        changes.append(PossibleMatch((person,), "a second value in a strong identifier "
                                     "scheme the person already holds; not attached"))
    return person, changes


def indexed(identifiers: Iterable[Identifier], agency: str) -> tuple[Identifier, ...]:
    """An event's identifiers as the index holds them: local ids qualified by the agency
    that issued them (an operator names them so too: ``local_id:<agency>/<value>``)."""
    return tuple(Identifier(i.scheme, f"{agency}/{i.value}") if i.scheme == "local_id" else i
                 for i in identifiers)


def strongest_first(identifiers: Iterable[Identifier]) -> list[Identifier]:
    return sorted(identifiers, key=lambda i: (_RANK.get(i.scheme, len(_RANK)), i.value))


def _compatible(index: PersonIndex, people: Sequence[str]) -> bool:
    """No two of them hold different values in a strong scheme, and none were split apart."""
    for a in people:
        for b in people:
            if a < b and _kept_apart(index, a, b):
                return False
    values: dict[str, str] = {}
    for person in people:
        for identifier in index.members[person]:
            if identifier.scheme not in STRONG_SCHEMES:
                continue
            if values.setdefault(identifier.scheme, identifier.value) != identifier.value:
                return False
    return True


# --- explicit assertions ---------------------------------------------------------------------------

def link(index: PersonIndex, a: Identifier, b: Identifier, asserted_by: str, new_id: NewId
         ) -> list[Change]:
    """``a`` and ``b`` are one person (an agency's merge notice or an operator). Unknown
    identifiers are taken in first. Across an operator's split only an operator links;
    anything else becomes a possible match."""
    changes: list[Change] = []
    people = []
    for identifier in (a, b):
        person = index.person_of(identifier)
        if person is None:
            person, more = resolve(index, [identifier], new_id)
            changes += more
        people.append(person)
    first, second = people
    if first == second:
        return changes
    if asserted_by != OPERATOR and _kept_apart(index, first, second):
        changes.append(PossibleMatch((first, second), "linked by an agency across an "
                                     "operator's split; an operator decides"))
        return changes
    survivor, absorbed = sorted((first, second), key=index.born.__getitem__)
    _recorded(index, changes, Merged(survivor, (absorbed,), asserted_by))
    return changes


def unlink(index: PersonIndex, a: Identifier, b: Identifier, asserted_by: str
           ) -> list[Change]:
    """Undo the merge that made ``a``'s and ``b``'s records one person: the identifiers that
    came with the absorbed side's original person (and whatever had merged into it) go back
    to that person id, revived; identifiers first seen after the merge stay with the
    survivor. An operator's unlink also keeps them apart from then on."""
    person = index.person_of(a)
    if person is None or index.person_of(b) != person:
        return []
    mine, theirs = index.origin[a], index.origin[b]
    if mine == theirs:  # they came in together: not a merge to undo (see split)
        return []
    # The side revived is the one whose id no longer lives (the survivor keeps its own).
    side, other = (theirs, mine) if theirs != person else (mine, theirs)
    going = _came_with(index, side, stop={person, other})
    moving = tuple(sorted((i for i in index.members[person] if index.origin[i] in going),
                          key=lambda i: (i.scheme, i.value)))
    changes: list[Change] = []
    _recorded(index, changes, Separated(side, person, moving, asserted_by))
    return changes


def split(index: PersonIndex, identifiers: Sequence[Identifier], new_id: NewId
          ) -> list[Change]:
    """An operator takes ``identifiers`` away from their person into a new one (they were
    wrongly recorded together); the rule never puts them back."""
    people = {index.person_of(i) for i in identifiers}
    if len(people) != 1 or None in people:
        raise ValueError("split takes identifiers of one known person")
    [person] = people
    assert person is not None
    if set(identifiers) == index.members[person]:
        return []
    changes: list[Change] = []
    _recorded(index, changes, Separated(new_id(), person, tuple(identifiers), OPERATOR))
    return changes


def erase(index: PersonIndex, person: str) -> list[Change]:
    """Forget a person (and every person id merged into them): an operator's erasure."""
    current = index.current(person)
    changes: list[Change] = []
    _recorded(index, changes, Erased(tuple(sorted(merged_into(index, current)))))
    return changes


def merged_into(index: PersonIndex, person: str) -> set[str]:
    """``person`` and every person id that resolves to it through merges."""
    return _came_with(index, person, stop=set())


def _kept_apart(index: PersonIndex, a: str, b: str) -> bool:
    """Whether an operator separated any record that ``a`` now holds from one ``b`` holds
    (a separation holds through later merges and separations of either side)."""
    if not index.apart:
        return False
    return any(frozenset((x, y)) in index.apart
               for x in index.members.get(a, ()) for y in index.members.get(b, ()))


def _came_with(index: PersonIndex, start: str, stop: set[str]) -> set[str]:
    """``start`` and every person id that was merged into it (none of ``stop``)."""
    ids = {start}
    grew = True
    while grew:
        grew = False
        for old, new in index.moved.items():
            if new in ids and old not in ids and old not in stop:
                ids.add(old)
                grew = True
    return ids
