"""Sealed fields (services/common/serde/sealing.py): every personal field of an agency event
is sealed and nothing else; sealed values open only with their key, in their own event and
field; a destroyed key reads as erased; sealed events keep their Avro schema."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import IdentityNotice, Referral
from services.common.serde.agency_event import decode_event, encode_event
from services.common.serde.sealing import (
    ERASED,
    TRANSIT,
    SealError,
    is_sealed,
    is_sealed_event,
    key_refs,
    new_key,
    person_ref,
    personal_values,
    seal,
    seal_event,
    unseal,
    unseal_event,
    unwrap,
    wrap,
)
from tests import factories as f

KEY, OTHER = new_key(), new_key()
REF = person_ref("0b6e8f7c-3d0a-4c1e-9a51-6f2d1b7a9e10")


def referral_with_free_text():  # type: ignore[no-untyped-def]
    event = f.referral("closed", reason="lost tenancy after eviction", outcome="housed")
    return dataclasses.replace(event, extra={"note": "lives with sister"})


def test_every_personal_field_is_sealed_and_the_codes_are_not() -> None:
    event = referral_with_free_text()
    sealed = seal_event(event, KEY, REF)
    assert [field for field, _ in personal_values(event)] == [
        "identifiers[0].value", "payload.reason", "payload.outcome", "extra.note"]
    assert all(is_sealed(v) for _, v in personal_values(sealed))
    assert f.NHS not in repr(sealed) and "eviction" not in repr(sealed)
    assert isinstance(sealed.payload, Referral)
    assert sealed.payload.to_service_kind == "HOUSING" and sealed.event_type == event.event_type
    assert key_refs(sealed) == {REF} and is_sealed_event(sealed)
    data = encode_event(sealed)                # the same schema carries sealed values
    assert f.NHS.encode() not in data and b"eviction" not in data
    assert unseal_event(decode_event(data), {REF: KEY}) == event


def test_an_identity_notices_other_record_is_sealed() -> None:
    notice = f.event("identity.merged", IdentityNotice("noms_number", "A1234BC"))
    sealed = seal_event(notice, KEY, REF)
    assert isinstance(sealed.payload, IdentityNotice) and is_sealed(sealed.payload.other_value)
    assert sealed.payload.other_scheme == "noms_number"
    assert unseal_event(sealed, {REF: KEY}) == notice


def test_a_destroyed_key_reads_as_erased() -> None:
    sealed = seal_event(referral_with_free_text(), KEY, REF)
    erased = unseal_event(sealed, {REF: None})
    assert erased.erased and [v for _, v in personal_values(erased)] == [ERASED] * 4
    assert not unseal_event(sealed, {REF: KEY}).erased


def test_a_sealed_value_opens_only_with_its_key_in_its_own_event_and_field() -> None:
    event = referral_with_free_text()
    sealed = seal_event(event, KEY, REF)
    with pytest.raises(SealError):
        unseal_event(sealed, {REF: OTHER})
    with pytest.raises(SealError, match="no key"):
        unseal_event(sealed, {})
    moved = dataclasses.replace(seal_event(f.referral("made"), KEY, REF),
                                identifiers=sealed.identifiers)   # another event's value
    with pytest.raises(SealError):
        unseal_event(moved, {REF: KEY})


def test_sealing_twice_keeps_the_first_seal_and_a_transit_seal_is_resealed_by_opening() -> None:
    event = referral_with_free_text()
    in_transit = seal_event(event, OTHER, TRANSIT)
    assert seal_event(in_transit, KEY, REF) == in_transit
    opened = unseal_event(in_transit, {TRANSIT: OTHER})
    assert key_refs(seal_event(opened, KEY, REF)) == {REF}


def test_data_keys_are_stored_wrapped_under_the_key_encryption_key() -> None:
    kek = new_key()
    wrapped = wrap(KEY, kek, "person-1")
    assert KEY not in wrapped and unwrap(wrapped, kek, "person-1") == KEY
    with pytest.raises(SealError):
        unwrap(wrapped, kek, "person-2")


@given(st.text(max_size=200), st.text(max_size=40))
def test_any_text_round_trips_and_damage_is_detected(value: str, context: str) -> None:
    sealed = seal(value, KEY, REF, context)
    assert is_sealed(sealed) and unseal(sealed, KEY, context) == value
    damaged = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SealError):
        unseal(damaged, KEY, context)
