"""Sealed fields: personal values encrypted where they are stored, so destroying one key makes
them unreadable everywhere (crypto-shredding).

A sealed value is a text that takes the place of the value in the same Avro field:
``sealed:v1:<key ref>:<base64url(nonce | AES-256-GCM ciphertext and tag)>``. The key ref says
which key opens it: ``p.<person id>`` a person's data key, ``t`` the transit key the gateway
made for one event (held with its receipt until admission has re-sealed the event). The
associated data binds the ciphertext to its event and field (``<agency>/<event id>/<field>``),
so a sealed value cannot be moved to another event or field and still open.

What is sealed in an agency event: identifier values, the other record an identity notice
names, a referral's free-text reason and outcome, and the values of ``extra`` (free
additional information). Codes that rules read stay readable: the rules and the read models
of everybody else work without any key, and those of a person whose key is destroyed show
their entries as erased.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.common.events import AgencyEvent, Identifier, IdentityNotice, Referral

PREFIX: Final = "sealed:v1:"
TRANSIT: Final = "t"
#: What an unreadable field reads as once its key is destroyed.
ERASED: Final = "erased"
KEY_BYTES: Final = 32
_NONCE: Final = 12


class SealError(ValueError):
    """A sealed value that cannot be opened with the key given (wrong key, moved, damaged)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * KEY_BYTES)


def person_ref(person_id: str) -> str:
    return f"p.{person_id}"


def person_of_ref(key_ref: str) -> str | None:
    return key_ref[2:] if key_ref.startswith("p.") else None


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def key_ref_of(value: str) -> str:
    return value[len(PREFIX):].split(":", 1)[0]


def seal(value: str, key: bytes, key_ref: str, context: str) -> str:
    return _sealed(AESGCM(key), value, key_ref, context)


def _sealed(cipher: AESGCM, value: str, key_ref: str, context: str) -> str:
    nonce = os.urandom(_NONCE)
    box = cipher.encrypt(nonce, value.encode(), context.encode())
    return f"{PREFIX}{key_ref}:{base64.urlsafe_b64encode(nonce + box).decode().rstrip('=')}"


def unseal(value: str, key: bytes, context: str) -> str:
    try:
        raw = value[len(PREFIX):].split(":", 1)[1]
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        return AESGCM(key).decrypt(data[:_NONCE], data[_NONCE:], context.encode()).decode()
    except (IndexError, ValueError, binascii.Error, InvalidTag, UnicodeDecodeError):
        raise SealError("a sealed value that this key does not open") from None


def transit_context(agency: str, event_id: str) -> str:
    """What a transit key is bound to when wrapped: its one event."""
    return f"transit/{agency}/{event_id}"


def wrap(key: bytes, key_encryption_key: bytes, context: str) -> bytes:
    """A data key as stored: encrypted under the deployment's key-encryption key."""
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key_encryption_key).encrypt(nonce, key, context.encode())


def unwrap(wrapped: bytes, key_encryption_key: bytes, context: str) -> bytes:
    try:
        return AESGCM(key_encryption_key).decrypt(wrapped[:_NONCE], wrapped[_NONCE:],
                                                  context.encode())
    except (ValueError, InvalidTag):
        raise SealError("a data key that the key-encryption key does not open") from None


# --- agency events ---------------------------------------------------------------------------

Transform = Callable[[str, str], str]   # (value, field path) -> value


def _context(event: AgencyEvent, field: str) -> str:
    return f"{event.source.agency}/{event.event_id}/{field}"


def _rewrite(event: AgencyEvent, change: Transform) -> AgencyEvent:
    """The event with every personal field passed through ``change``."""
    identifiers = tuple(Identifier(i.scheme, change(i.value, f"identifiers[{n}].value"))
                        for n, i in enumerate(event.identifiers))
    payload = event.payload
    if isinstance(payload, IdentityNotice):
        payload = dataclasses.replace(payload, other_value=change(payload.other_value,
                                                                  "payload.other_value"))
    elif isinstance(payload, Referral) and (payload.reason or payload.outcome):
        payload = dataclasses.replace(
            payload,
            reason=change(payload.reason, "payload.reason") if payload.reason else None,
            outcome=change(payload.outcome, "payload.outcome") if payload.outcome else None)
    extra = {k: change(v, f"extra.{k}") for k, v in event.extra.items()}
    return dataclasses.replace(event, identifiers=identifiers, payload=payload, extra=extra)


def personal_values(event: AgencyEvent) -> Iterator[tuple[str, str]]:
    """(field path, value) of every personal field of the event (the fields ``_rewrite``
    passes through its change, in the same order; read without building a new event: the
    hot path asks this of every event)."""
    for n, identifier in enumerate(event.identifiers):
        yield f"identifiers[{n}].value", identifier.value
    payload = event.payload
    if isinstance(payload, IdentityNotice):
        yield "payload.other_value", payload.other_value
    elif isinstance(payload, Referral):
        if payload.reason:
            yield "payload.reason", payload.reason
        if payload.outcome:
            yield "payload.outcome", payload.outcome
    for k, v in event.extra.items():
        yield f"extra.{k}", v


def seal_event(event: AgencyEvent, key: bytes, key_ref: str) -> AgencyEvent:
    """Every personal field sealed with ``key`` (a field already sealed is left as it is)."""
    cipher = AESGCM(key)
    return _rewrite(event, lambda value, field: value if is_sealed(value) else
                    _sealed(cipher, value, key_ref, _context(event, field)))


def key_refs(event: AgencyEvent) -> set[str]:
    return {key_ref_of(v) for _, v in personal_values(event) if is_sealed(v)}


def is_sealed_event(event: AgencyEvent) -> bool:
    return any(is_sealed(v) for _, v in personal_values(event))


def unseal_event(event: AgencyEvent, keys: Mapping[str, bytes | None]) -> AgencyEvent:
    """The event with its fields opened. A field whose key is destroyed (None in ``keys``)
    reads as ``ERASED`` and the event is marked erased; a key that is not in ``keys`` at all,
    or that does not open its field, is a SealError (a damaged or foreign message)."""
    erased = False

    def open_(value: str, field: str) -> str:
        nonlocal erased
        if not is_sealed(value):
            return value
        ref = key_ref_of(value)
        if ref not in keys:
            raise SealError(f"{field}: no key {ref!r} is known")
        key = keys[ref]
        if key is None:
            erased = True
            return ERASED
        return unseal(value, key, _context(event, field))

    if not is_sealed_event(event):
        return event
    opened = _rewrite(event, open_)
    return dataclasses.replace(opened, erased=True) if erased else opened
