"""Amazon SNS message signatures, checked purely: the string SNS signs, the signing
certificate's URL and validity, and the RSA signature itself.

As AWS documents it (sns-verify-signature-of-message): the string to sign is
``Name\\nvalue\\n`` for each signed field, in byte order of the names; ``SignatureVersion``
"1" is SHA1withRSA and "2" SHA256withRSA (PKCS#1 v1.5), ``Signature`` is base64. A refusal
names the field and the reason, never a value: the ``Message`` holds personal data.
Fetching the certificate is I/O and lives in ``sns_certificates``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from services.ingest.formats.hmpps.sns import (
    NOTIFICATION,
    SUBSCRIPTION,
    UNSUBSCRIBE,
    is_sns_certificate_url,
)

_NOTIFICATION_FIELDS: Final = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn",
                               "Type")
_CONFIRMATION_FIELDS: Final = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                               "TopicArn", "Type")
SIGNED_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    NOTIFICATION: _NOTIFICATION_FIELDS, SUBSCRIPTION: _CONFIRMATION_FIELDS,
    UNSUBSCRIBE: _CONFIRMATION_FIELDS}
#: Only a Notification may leave this out (SNS signs it only when the publisher set one).
_OPTIONAL: Final = frozenset({"Subject"})
HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {"1": hashes.SHA1,
                                                           "2": hashes.SHA256}
#: An RSA signature is at most a few hundred bytes; its base64 is not allowed to be more.
_MAX_SIGNATURE_CHARS: Final = 2048


class SignatureRefused(ValueError):
    """The delivery's signature cannot be trusted. ``code`` is the reason as one word (a
    metric label); the message names the field and the reason, never a value."""

    def __init__(self, field_name: str, reason: str, code: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class Signed:
    """What a delivery says about its own signature, read but not yet checked."""
    string_to_sign: bytes
    signature: bytes
    hash_name: str              # "1" or "2": SignatureVersion
    certificate_url: str


def string_to_sign(body: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed for ``body`` (an envelope already read: ``Type`` is known)."""
    kind = body.get("Type")
    if not isinstance(kind, str) or kind not in SIGNED_FIELDS:
        raise SignatureRefused("Type", "is not a type SNS signs", "unsigned_type")
    parts = []
    for name in SIGNED_FIELDS[kind]:
        if name in _OPTIONAL and kind == NOTIFICATION and name not in body:
            continue
        value = body.get(name)
        if not isinstance(value, str):
            raise SignatureRefused(name, "is signed by SNS, so it must be present as a string",
                                   "missing_field")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8", "surrogatepass")


def read_signed(body: Mapping[str, Any]) -> Signed:
    """The signature, its version and the certificate URL, each checked for shape."""
    version = body.get("SignatureVersion")
    if not isinstance(version, str) or version not in HASHES:
        raise SignatureRefused("SignatureVersion", 'must be "1" (SHA1withRSA) or "2" '
                               "(SHA256withRSA)", "unknown_version")
    encoded = body.get("Signature")
    if not isinstance(encoded, str) or not encoded:
        raise SignatureRefused("Signature", "is required: every SNS delivery is signed",
                               "missing_signature")
    try:
        if len(encoded) > _MAX_SIGNATURE_CHARS:
            raise ValueError
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused("Signature", "must be base64 of an RSA signature",
                               "bad_signature_encoding") from None
    url = body.get("SigningCertURL")
    if not isinstance(url, str) or not is_sns_certificate_url(url):
        raise SignatureRefused("SigningCertURL", "must be an https://sns.<region>."
                               "amazonaws.com/ URL of a .pem file", "certificate_url")
    return Signed(string_to_sign(body), signature, version, url)


def load_certificate(pem: bytes) -> x509.Certificate:
    """An X.509 PEM certificate with an RSA key (SNS signs with RSA); ValueError if not."""
    certificate = x509.load_pem_x509_certificate(pem)
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise ValueError("the signing certificate's key is not RSA")
    return certificate


def verify(signed: Signed, certificate: x509.Certificate, now: datetime) -> None:
    """Refuses unless ``certificate`` is valid at ``now`` (timezone-aware) and its key
    signed ``signed.string_to_sign``."""
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SignatureRefused("SigningCertURL", "the signing certificate is outside its "
                               "validity period", "certificate_expired")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureRefused("SigningCertURL", "the signing certificate's key is not RSA",
                               "certificate_key")
    try:
        key.verify(signed.signature, signed.string_to_sign, padding.PKCS1v15(),
                   HASHES[signed.hash_name]())
    except InvalidSignature:
        raise SignatureRefused("Signature", "does not verify with the signing certificate "
                               "over the signed fields", "signature_mismatch") from None
