"""Identifier values in the identity log, sealed with the data key of the person who holds
them (``services/common/serde/sealing.py``). Pure.

The identity log names identifiers in ``Identified``, ``Attached`` and ``Separated`` changes;
each is sealed with its change's person's key, bound to the change and position. When the log
is read back, a value whose key is destroyed cannot be opened and is left out: the index
replayed from the log no longer holds an erased person's identifiers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from services.common.events import Identifier
from services.common.serde.sealing import (
    SealError,
    is_sealed,
    key_ref_of,
    person_ref,
    seal,
    unseal,
)
from services.identity.codec import IdentityEvent
from services.identity.domain import Attached, Identified, Separated

_HOLDING = (Identified, Attached, Separated)


def holder(event: IdentityEvent) -> str | None:
    """The person whose key seals the change's identifiers (None: it names none)."""
    change = event.change
    return change.person_id if isinstance(change, _HOLDING) and change.identifiers else None


def _context(event: IdentityEvent, n: int) -> str:
    return f"identity/{event.change_id}/identifiers[{n}]"


def _identifiers(event: IdentityEvent,
                 change: Callable[[int, Identifier], Identifier | None]) -> IdentityEvent:
    if not isinstance(event.change, _HOLDING):
        return event
    kept = tuple(i for n, old in enumerate(event.change.identifiers)
                 if (i := change(n, old)) is not None)
    return dataclasses.replace(event, change=dataclasses.replace(event.change, identifiers=kept))


def seal_identity_event(event: IdentityEvent, keys: Mapping[str, bytes | None]
                        ) -> IdentityEvent:
    person = holder(event)
    if person is None:
        return event
    key = keys[person_ref(person)]
    if key is None:
        raise ValueError("the person's data key is destroyed: nothing more is recorded of them")
    ref = person_ref(person)
    return _identifiers(event, lambda n, i: i if is_sealed(i.value) else Identifier(
        i.scheme, seal(i.value, key, ref, _context(event, n))))


def key_refs(event: IdentityEvent) -> set[str]:
    change = event.change
    if not isinstance(change, _HOLDING):
        return set()
    return {key_ref_of(i.value) for i in change.identifiers if is_sealed(i.value)}


def open_identity_event(event: IdentityEvent, keys: Mapping[str, bytes | None]
                        ) -> IdentityEvent:
    """The change with its identifiers opened; those whose key is destroyed are left out."""
    def open_(n: int, i: Identifier) -> Identifier | None:
        if not is_sealed(i.value):
            return i       # written before identifiers were sealed
        ref = key_ref_of(i.value)
        if ref not in keys:
            raise SealError(f"no key {ref!r} is known")
        key = keys[ref]
        return None if key is None else Identifier(i.scheme, unseal(i.value, key,
                                                                    _context(event, n)))
    return _identifiers(event, open_)
