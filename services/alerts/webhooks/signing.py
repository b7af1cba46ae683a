"""Standard Webhooks signatures: pure.

A secret is ``whsec_`` + base64 of 32 random bytes. A request carries ``webhook-id`` (the
delivery's id, the same on every retry), ``webhook-timestamp`` (whole seconds since the
epoch, when this attempt was sent) and ``webhook-signature``: ``v1,<base64 of HMAC-SHA256
over "{id}.{timestamp}.{body}">``, one per live secret, separated by spaces. During a
rotation the old and the new secret both sign, so a receiver holding either verifies.

``verify`` is the receiver's side (tests, and the snippet in docs/webhooks.md); receivers can
equally use the published ``standardwebhooks`` library, which the tests check against.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from typing import Final

PREFIX: Final = "whsec_"
SECRET_BYTES: Final = 32
VERSION: Final = "v1"
#: How far a receiver lets ``webhook-timestamp`` stray from its own clock (replay window).
TOLERANCE_SECONDS: Final = 5 * 60


class SignatureError(ValueError):
    """A request whose headers are missing, too old or too new, or signed by no secret held."""


def new_secret(raw: bytes | None = None) -> str:
    """A secret to hand to a receiver once (``raw``: its 32 bytes, random when not given)."""
    raw = secrets.token_bytes(SECRET_BYTES) if raw is None else raw
    if len(raw) != SECRET_BYTES:
        raise ValueError(f"a webhook secret is {SECRET_BYTES} bytes")
    return PREFIX + base64.b64encode(raw).decode()


def secret_bytes(secret: str | bytes) -> bytes:
    """The key inside a ``whsec_`` secret (bytes are taken as the key itself)."""
    if isinstance(secret, bytes):
        return secret
    text = secret.removeprefix(PREFIX)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a webhook secret (whsec_ and base64)") from None


def signature(key: bytes, delivery_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of the request by one key."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def signature_header(keys: Iterable[bytes], delivery_id: str, timestamp: int,
                     body: bytes) -> str:
    """``webhook-signature``: one signature per live key, space-separated."""
    found = [signature(key, delivery_id, timestamp, body) for key in keys]
    if not found:
        raise ValueError("an endpoint with no live secret cannot sign")
    return " ".join(found)


def headers(keys: Iterable[bytes], delivery_id: str, timestamp: int, body: bytes
            ) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {"webhook-id": delivery_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(keys, delivery_id, timestamp, body)}


def verify(body: bytes, request_headers: Mapping[str, str], secret: str | bytes, now: int,
           tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raise SignatureError unless one of the request's signatures is ``secret``'s and its
    timestamp is within ``tolerance`` seconds of ``now`` (the receiver's clock)."""
    lowered = {k.lower(): v for k, v in request_headers.items()}
    delivery_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    sent = lowered.get("webhook-signature")
    if not (delivery_id and stamp and sent):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not whole seconds") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError("webhook-timestamp too old or too new")
    expected = signature(secret_bytes(secret), delivery_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, s.encode()) for s in sent.split(" ") if s):
        raise SignatureError("no signature matches this secret")
